"""The event backbone: CloudEvents envelope, topic catalogue, transactional outbox, idempotent consumer."""

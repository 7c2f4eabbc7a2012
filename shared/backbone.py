"""The tables every service keeps in its own schema: outbox, inbox, audit log and idempotency keys.

A service creates exactly one ``Backbone`` on its metadata (``db/models.py``) and passes it around; its
alembic history creates these tables like any other.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB, UUID


class Backbone:
    def __init__(self, service: str, metadata: MetaData) -> None:
        self.service = service
        self.metadata = metadata
        self.outbox = Table(
            "outbox",
            metadata,
            Column("seq", BigInteger, primary_key=True, autoincrement=True),
            Column("event_id", UUID(as_uuid=True), nullable=False),
            Column("topic", String(200), nullable=False),
            Column("key", String(64), nullable=False),
            Column("type", String(200), nullable=False),
            # json, not jsonb: written once, read once as text by the relay (jsonb parsed it into its binary
            # form on the way in and printed it back on the way out)
            Column("headers", JSON, nullable=False),
            Column("payload", JSON, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            Column("attempts", Integer, nullable=False, server_default=text("0")),
            Column("last_error", Text),
        )
        self.inbox = Table(
            "inbox",
            metadata,
            Column("consumer", String(100), nullable=False),
            Column("event_id", String(100), nullable=False),
            Column("event_type", String(200), nullable=False),
            Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
        )
        self.audit_log = Table(
            "audit_log",
            metadata,
            Column("id", BigInteger, primary_key=True, autoincrement=True),
            Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            Column("actor", String(200), nullable=False),
            Column("role", String(40), nullable=False),
            Column("region", String(12)),
            Column("action", String(100), nullable=False),
            Column("object_type", String(60), nullable=False),
            Column("object_id", String(100), nullable=False),
            Column("before", JSONB),
            Column("after", JSONB),
            Column("request_id", String(64)),
            Column("event_id", String(100)),
        )
        Index("ix_audit_log_object", self.audit_log.c.object_type, self.audit_log.c.object_id)
        self.idempotency = Table(
            "idempotency_keys",
            metadata,
            Column("actor", String(200), nullable=False),
            Column("key", String(200), nullable=False),
            Column("method", String(10), nullable=False),
            Column("path", String(500), nullable=False),
            Column("request_hash", String(64), nullable=False),
            Column("status_code", Integer, nullable=False),
            Column("response", JSONB, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            PrimaryKeyConstraint("actor", "key", name="pk_idempotency_keys"),
        )

    @property
    def notify_channel(self) -> str:
        return f"zjtx_outbox_{self.service}"

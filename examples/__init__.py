"""Runnable examples for agencies: ``agency_producer.py`` (send the inbound feeds) and ``agency_consumer.py``
(follow zjtx's events over the broker or the monitor's HTTP feed). See docs/agencies.md."""

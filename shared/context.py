"""Per-request / per-event context carried into logs, audit rows and outgoing events."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
traceparent_var: ContextVar[str | None] = ContextVar("traceparent", default=None)
event_id_var: ContextVar[str | None] = ContextVar("event_id", default=None)
uscc_var: ContextVar[str | None] = ContextVar("uscc", default=None)

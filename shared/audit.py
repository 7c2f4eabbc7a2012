"""Audit trail: every state change writes one row in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.backbone import Backbone
from shared.context import event_id_var, request_id_var
from shared.db import driver_connection
from shared.events.envelope import dumps, dumps_text, loads


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    return loads(dumps(value))


def audit_row(
    backbone: Backbone,
    actor: Principal | None,
    action: str,
    object_type: str,
    object_id: str,
    *,
    before: Any = None,
    after: Any = None,
) -> dict[str, Any]:
    """The audit row of one state change. ``actor`` None means the system itself acted on an event (the event
    id, from the consumer's context, is recorded). ``before``/``after`` stay as given (models, Decimals and
    dates included); they are turned into JSON when the row is written."""
    return {
        "actor": actor.sub if actor else f"system:{backbone.service}",
        "role": actor.role.value if actor else "system",
        "region": actor.region if actor else None,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "before": before,
        "after": after,
        "request_id": request_id_var.get(),
        "event_id": event_id_var.get(),
    }


async def record_audit(
    session: AsyncSession,
    backbone: Backbone,
    actor: Principal | None,
    action: str,
    object_type: str,
    object_id: str,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    """Write the audit row of one state change (see ``audit_row``)."""
    row = audit_row(backbone, actor, action, object_type, object_id, before=before, after=after)
    row["before"], row["after"] = _jsonable(before), _jsonable(after)
    await session.execute(backbone.audit_log.insert().values(row))


_COLUMNS = ("actor", "role", "region", "action", "object_type", "object_id", "before", "after", "request_id",
            "event_id")


async def record_audits(session: AsyncSession, backbone: Backbone, rows: list[dict[str, Any]]) -> None:
    """Write many ``audit_row`` rows at once (batch event handlers): one COPY in the session's transaction.
    JSON columns hold what ``record_audit`` stores (``None`` as JSON null)."""
    if not rows:
        return
    raw = await driver_connection(session)
    await raw.copy_records_to_table(
        "audit_log", schema_name=backbone.audit_log.schema, columns=list(_COLUMNS),
        records=[(r["actor"], r["role"], r["region"], r["action"], r["object_type"], r["object_id"],
                  dumps_text(r["before"]), dumps_text(r["after"]), r["request_id"], r["event_id"]) for r in rows],
    )

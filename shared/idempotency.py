"""``Idempotency-Key`` for POSTs that move money: a retry with the same key returns the first response."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.backbone import Backbone
from shared.events.envelope import dumps
from shared.problems import Problem


def require_key(key: str | None) -> str:
    """The ``Idempotency-Key`` of a POST that moves money: 428 when it is missing or blank."""
    if key is None or not key.strip():
        raise Problem(
            428,
            "涉及资金的请求须带 Idempotency-Key 请求头(重试时使用同一键,避免重复下达或拨付) (Idempotency-Key required)",
            errors=[{"field": "Idempotency-Key", "message": "缺少幂等键"}],
        )
    return key


def request_hash(body: Any) -> str:
    return hashlib.sha256(dumps(body)).hexdigest()


async def replay(
    session: AsyncSession, backbone: Backbone, actor: str, key: str, method: str, path: str, body_hash: str
) -> tuple[int, Any] | None:
    """Inside the route's transaction: lock the key, return the stored (status, body) if it was used."""
    if not key or len(key) > 200:
        raise Problem(400, "Idempotency-Key 须为 1–200 个字符 (invalid Idempotency-Key)")
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{actor}|{key}"})
    idem = backbone.idempotency
    row = (await session.execute(select(idem).where(idem.c.actor == actor, idem.c.key == key))).first()
    if row is None:
        return None
    if row.request_hash != body_hash or row.path != path or row.method != method:
        raise Problem(
            422,
            "Idempotency-Key 已用于另一个请求 (key reused with a different request)",
            errors=[{"field": "Idempotency-Key", "message": "该键已用于不同的请求内容"}],
        )
    return int(row.status_code), row.response


async def remember(
    session: AsyncSession,
    backbone: Backbone,
    actor: str,
    key: str,
    method: str,
    path: str,
    body_hash: str,
    status: int,
    response: Any,
) -> None:
    import json

    await session.execute(
        backbone.idempotency.insert().values(
            actor=actor,
            key=key,
            method=method,
            path=path,
            request_hash=body_hash,
            status_code=status,
            response=json.loads(dumps(response)),
        )
    )

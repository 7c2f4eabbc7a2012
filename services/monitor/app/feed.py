"""The feed: archived events after a cursor, within the caller's jurisdiction; long-poll and stream followers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.monitor.db import archive
from services.monitor.domain.regions import prefix_of
from shared.auth import Principal, Role

POLL_INTERVAL = 0.25


def visible_prefix(principal: Principal, region: str | None) -> str | None:
    """The region-code prefix the caller reads: its jurisdiction (admins: everything, None), narrowed by
    ``region`` (already checked to lie inside it)."""
    if region is not None:
        return prefix_of(region)
    return None if principal.role == Role.ADMIN else prefix_of(principal.region)


async def read(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    prefix: str | None,
    after: int,
    limit: int,
    types: Sequence[str] = (),
    wait: float = 0.0,
) -> list[dict[str, Any]]:
    """Events after ``after``; with ``wait`` > 0 waits (long-poll) until at least one arrives or the time is up."""
    deadline = time.monotonic() + wait
    while True:
        async with session_factory() as session:
            rows = await archive.page(session, after=after, limit=limit, prefix=prefix, types=types)
        if rows or time.monotonic() >= deadline:
            return rows
        await asyncio.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))


async def follow(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    prefix: str | None,
    after: int,
    types: Sequence[str] = (),
    heartbeat: float = 15.0,
    stop_after: float | None = None,
) -> AsyncIterator[tuple[int, dict[str, Any]] | None]:
    """For Server-Sent Events: every new event in order (``None`` as a heartbeat when nothing came)."""
    started = time.monotonic()
    while stop_after is None or time.monotonic() - started < stop_after:
        rows = await read(session_factory, prefix=prefix, after=after, limit=500, types=types, wait=heartbeat)
        if not rows:
            yield None
        for row in rows:
            after = row["cursor"]
            yield after, row

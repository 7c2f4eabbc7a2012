"""The feed: archived events after a cursor, within the caller's jurisdiction; long-poll and stream followers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.monitor.db import archive
from shared.auth import Principal, Role
from shared.db import asyncpg_dsn

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0  # without a listener (an HTTP-only instance), followers look again this often


class FeedSignal:
    """Wakes the followers of one process when events are archived (``NOTIFY`` on the archive's channel)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.live = False

    def current(self) -> asyncio.Event:
        """Take before reading the archive: an archive commit after that read still wakes the waiter."""
        return self._event

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()


_signals: weakref.WeakKeyDictionary[object, FeedSignal] = weakref.WeakKeyDictionary()


def signal_of(runtime: ServiceRuntime) -> FeedSignal:
    """The signal of a running service (keyed by its session factory: one per runtime, and hashable)."""
    owner = runtime.session_factory
    found = _signals.get(owner)
    if found is None:
        found = _signals[owner] = FeedSignal()
    return found


async def feed_listener(runtime: ServiceRuntime) -> None:
    """Worker: LISTEN on the archive's channel and wake this process's followers; reconnects after a loss."""
    signal = signal_of(runtime)
    backoff = 0.5
    while not runtime.stopping.is_set():
        conn = None
        lost = asyncio.Event()
        try:
            conn = await asyncpg.connect(asyncpg_dsn(runtime.settings.database_url))
            conn.add_termination_listener(lambda _c, ev=lost: ev.set())
            await conn.add_listener(archive.FEED_CHANNEL, lambda *_: signal.notify())
            signal.live = True
            signal.notify()  # followers waiting on the poll interval look again now
            backoff = 0.5
            stopping = asyncio.ensure_future(runtime.stopping.wait())
            dropped = asyncio.ensure_future(lost.wait())
            await asyncio.wait({stopping, dropped}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            dropped.cancel()
        except Exception as exc:
            log.warning("feed listener unavailable (%s); retrying in %.1fs", exc, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runtime.stopping.wait(), timeout=backoff)
            backoff = min(backoff * 2, 10.0)
        finally:
            signal.live = False
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)


def visible_territory(principal: Principal, region: str | None) -> str | None:
    """The region whose events the caller reads: its jurisdiction (admins: everything, None), narrowed by
    ``region`` (already checked to lie inside it). The archive takes its codes from the region tree."""
    if region is not None:
        return region
    return None if principal.role == Role.ADMIN else principal.region


async def read(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    signal: FeedSignal | None = None,
    territory: str | None,
    after: int,
    limit: int,
    types: Sequence[str] = (),
    wait: float = 0.0,
) -> list[dict[str, Any]]:
    """Events after ``after``; with ``wait`` > 0 waits (long-poll) until at least one arrives or the time is up."""
    deadline = time.monotonic() + wait
    while True:
        woken = signal.current() if signal is not None else None
        async with session_factory() as session:
            rows = await archive.page(session, after=after, limit=limit, territory=territory, types=types)
        left = deadline - time.monotonic()
        if rows or left <= 0:
            return rows
        if woken is not None and signal is not None and signal.live:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout=left)
        else:
            await asyncio.sleep(min(POLL_INTERVAL, left))


async def follow(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    signal: FeedSignal | None = None,
    territory: str | None,
    after: int,
    types: Sequence[str] = (),
    heartbeat: float = 15.0,
    stop_after: float | None = None,
) -> AsyncIterator[tuple[int, dict[str, Any]] | None]:
    """For Server-Sent Events: every new event in order (``None`` as a heartbeat when nothing came)."""
    started = time.monotonic()
    while stop_after is None or time.monotonic() - started < stop_after:
        rows = await read(session_factory, signal=signal, territory=territory, after=after, limit=500, types=types,
                          wait=heartbeat)
        if not rows:
            yield None
        for row in rows:
            after = row["cursor"]
            yield after, row

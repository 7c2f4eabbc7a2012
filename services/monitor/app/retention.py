"""Archive retention: month partitions wholly older than ``ZJTX_MONITOR_RETENTION_DAYS`` are dropped (default:
kept for ever)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from services.monitor.config import monitor_settings
from services.monitor.db.archive import drop_partitions_before

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)


async def apply_retention(runtime: ServiceRuntime, days: int | None, now: datetime | None = None) -> list[str]:
    if days is None:
        return []
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    async with runtime.session_factory() as session, session.begin():
        dropped = await drop_partitions_before(session, cutoff)
    if dropped:
        log.info("archive partitions dropped by retention", extra={"partitions": dropped})
    return dropped


async def retention_worker(runtime: ServiceRuntime) -> None:
    """Once an hour (and at start), drop what retention allows."""
    while not runtime.stopping.is_set():
        try:
            await apply_retention(runtime, monitor_settings().retention_days)
        except Exception as exc:  # the next round retries
            log.warning("retention failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), timeout=3600)

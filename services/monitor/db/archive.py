"""The event archive: month partitions created on demand, append-only inserts, the feed query, retention."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor.db.models import PARTITION_SCHEMA
from shared.db import driver_connection
from shared.events.envelope import CloudEvent, dumps_text
from shared.regions import region_tree

_LOCK_KEY = 0x6D6F6E69  # advisory lock guarding partition creation ("moni")
FEED_CHANNEL = "zjtx_monitor_feed"  # NOTIFYed by each transaction that archives events (delivered on commit)


def month_of(t: datetime) -> date:
    t = t.astimezone(UTC)
    return date(t.year, t.month, 1)


def next_month(m: date) -> date:
    return date(m.year + (m.month == 12), m.month % 12 + 1, 1)


def partition_name(m: date) -> str:
    return f"events_{m.year:04d}{m.month:02d}"


async def existing_partitions(session: AsyncSession) -> set[str]:
    rows = await session.execute(
        text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
             "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
             "WHERE n.nspname = 'monitor' AND p.relname = 'events'")
    )
    return {r[0] for r in rows}


async def ensure_partitions(session: AsyncSession, months: Iterable[date]) -> None:
    """Create the month partitions the rows need, in the caller's transaction (a rollback takes them back too);
    creation is serialised by an advisory lock, taken only when one is missing."""
    wanted = {partition_name(m): m for m in months}
    if wanted.keys() <= await existing_partitions(session):
        return
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    have = await existing_partitions(session)
    for name, m in sorted(wanted.items()):
        if name not in have:
            await session.execute(text(
                f'CREATE TABLE "{PARTITION_SCHEMA}"."{name}" PARTITION OF monitor.events '
                f"FOR VALUES FROM ('{m.isoformat()}T00:00:00+00:00') TO ('{next_month(m).isoformat()}T00:00:00+00:00')"
            ))


def region_of(event: CloudEvent) -> str | None:
    region = event.regioncode or event.data.get("region_code")
    return region if isinstance(region, str) and len(region) == 6 else None


async def append(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """Archive ``events`` (the consumer's inbox has already made each one new)."""
    if not events:
        return
    await ensure_partitions(session, {month_of(e.time) for e in events})
    raw = await driver_connection(session)
    await raw.copy_records_to_table(
        "events", schema_name="monitor",
        columns=("event_id", "type", "source", "subject", "region_code", "time", "correlation_id", "payload"),
        records=[(e.id, e.type, e.source, e.subject, region_of(e), e.time, e.correlationid, dumps_text(e.data))
                 for e in events],
    )
    await raw.execute(f"NOTIFY {FEED_CHANNEL}")


async def page(
    session: AsyncSession,
    *,
    after: int,
    limit: int,
    territory: str | None,
    types: Sequence[str] = (),
    subject: str | None = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Archived events after ``cursor`` in cursor order; ``territory`` the region the caller may see: events of
    the codes the GB/T 2260 tree puts there, never a LIKE pattern (None: every event, those without a region
    included)."""
    sql = ("SELECT cursor, event_id, type, source, subject, region_code, time, correlation_id, payload "
           "FROM monitor.events WHERE cursor > :after")
    params: dict[str, Any] = {"after": after, "limit": limit}
    if territory is not None:
        sql += " AND region_code = ANY(CAST(:codes AS text[]))"
        params["codes"] = sorted(region_tree().covered(territory))
    if types:
        sql += " AND type = ANY(:types)"
        params["types"] = list(types)
    if subject:
        sql += " AND subject = :subject"
        params["subject"] = subject
    if since is not None:
        sql += " AND time >= :since"
        params["since"] = since
    sql += " ORDER BY cursor LIMIT :limit"
    return [dict(r._mapping) for r in await session.execute(text(sql), params)]


async def drop_partitions_before(session: AsyncSession, cutoff: datetime) -> list[str]:
    """Drop the month partitions that end on or before ``cutoff`` (retention); returns their names."""
    dropped = []
    for name in sorted(await existing_partitions(session)):
        year, month = int(name[7:11]), int(name[11:13])
        if datetime.combine(next_month(date(year, month, 1)), datetime.min.time(), UTC) <= cutoff:
            await session.execute(text(f'DROP TABLE "{PARTITION_SCHEMA}"."{name}"'))
            dropped.append(name)
    return dropped

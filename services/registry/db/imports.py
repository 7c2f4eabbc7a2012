"""Import jobs repository: claiming, fencing, the job's lease and its resubmission.

A running job holds a **lease**: a PostgreSQL session advisory lock keyed by the job id, taken on a connection
of its own before the claim commits and kept until the job ends. When the worker's process dies (SIGKILL, OOM,
a crashed host), PostgreSQL ends that session and frees the lock at once, so a job that is ``running`` while
its lease can be taken has lost its worker: no timer, no clock shared between instances."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from services.registry.db.models import ImportJob

_TRY_LEASE = text("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))")


def _lease_key(job_id: uuid.UUID) -> str:
    return f"registry.import_job:{job_id}"


async def take_lease(engine: AsyncEngine, job_id: uuid.UUID) -> AsyncConnection | None:
    """The job's lease (a connection holding its advisory lock), or None while another session holds it."""
    conn = await engine.connect()
    try:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        if await conn.scalar(_TRY_LEASE, {"key": _lease_key(job_id)}):
            return conn
    except BaseException:
        await drop_lease(conn)
        raise
    await drop_lease(conn)
    return None


async def drop_lease(conn: AsyncConnection) -> None:
    """End a lease: the connection is closed, not returned to the pool (the server frees its session locks)."""
    try:
        await conn.invalidate()
    finally:
        await conn.close()


async def next_queued(session: AsyncSession) -> ImportJob | None:
    return (
        await session.scalars(
            select(ImportJob)
            .where(ImportJob.status == "queued")
            .order_by(ImportJob.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
    ).first()


async def for_update(session: AsyncSession, job_id: uuid.UUID) -> ImportJob | None:
    return (await session.scalars(select(ImportJob).where(ImportJob.id == job_id).with_for_update())).first()


async def running_unlocked(session: AsyncSession) -> list[ImportJob]:
    """Jobs marked running whose row no transaction holds (a live worker's claim or write is skipped)."""
    return list(
        (
            await session.scalars(
                select(ImportJob)
                .where(ImportJob.status == "running")
                .order_by(ImportJob.created_at)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )


async def resubmission_of(session: AsyncSession, job: ImportJob) -> uuid.UUID | None:
    """The first later job of the same uploader, kind and file (the operator's resubmission), if any."""
    if job.content_sha256 is None:
        return None
    return await session.scalar(
        select(ImportJob.id)
        .where(
            ImportJob.id != job.id,
            ImportJob.kind == job.kind,
            ImportJob.content_sha256 == job.content_sha256,
            ImportJob.principal["sub"].astext == str(job.principal.get("sub")),
            ImportJob.created_at > job.created_at,
        )
        .order_by(ImportJob.created_at)
        .limit(1)
    )


async def update_attempt(session: AsyncSession, job_id: uuid.UUID, attempt: int, **values: Any) -> bool:
    """Update the job as its attempt ``attempt`` (fenced: only while that attempt still runs it, and nobody
    superseded it); whether it did."""
    done = await session.scalar(
        update(ImportJob)
        .where(
            ImportJob.id == job_id,
            ImportJob.status == "running",
            ImportJob.attempts == attempt,
            ImportJob.superseded_by.is_(None),
        )
        .values(**values)
        .returning(ImportJob.id)
    )
    return done is not None


def now() -> datetime:
    return datetime.now(UTC)

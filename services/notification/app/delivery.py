"""Delivery worker: sends the SMS and email rows of ``deliveries`` with retries, backoff and a status each.

State machine per row: pending|deferred --claim--> sending --provider accepted--> sent
                                                    sending --error--> pending (backoff) | failed (give up)
The claim (status 'sending', claimed_at, claimed_by, attempts+1) commits *before* the provider call, so two
workers never send one row at once. ``claimed_by`` is the worker process's lease key (``shared.leases``): when
the process dies (SIGKILL, OOM) PostgreSQL frees its lease at once and the next pass takes its 'sending' rows
over; the time lease (``LEASE_SECONDS``) is only the backstop for a worker that is alive but stuck.

A worker that dies after the provider accepted and before its commit leaves the row 'sending', and the row is
sent again. So every attempt of a delivery carries the same **idempotency key**, derived from the delivery id, and
**providers deduplicate on it** — that is the contract for every provider adapter:
- SMS: ``Idempotency-Key`` header (and ``client_ref``) = ``idempotency_key(id)``; the gateway answers a repeated
  key with its first answer and sends nothing;
- e-mail: ``Message-ID`` = ``message_id(id)`` (and ``X-Zjtx-Idempotency-Key``); the relay accepts a repeated
  Message-ID and delivers it once (the local SMTP stand-in does; a real relay or mail API adapter must pass the
  key as its idempotency key, or the residual window is a second copy with the same Message-ID).
So each notice reaches each channel's provider once; the chaos run (``make faults``) checks it at the providers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notification.db import notices as notice_repo
from services.notification.domain.schedule import backoff_seconds
from shared.db import asyncpg_dsn
from shared.leases import WorkerLease
from shared.settings import Settings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
LEASE_SECONDS = 120.0
MAIL_FROM = "noreply@zjtx.zj.gov.cn"
SMS_SIGN = "【浙江专精特新】"


class PermanentFailure(Exception):
    """The provider refused the message for good (bad number, bad address): no retry."""


def idempotency_key(delivery_id: int) -> str:
    return f"zjtx-notification-delivery-{delivery_id}"


def message_id(delivery_id: int) -> str:
    return f"<delivery-{delivery_id}@notification.zjtx>"


async def send_sms(client: httpx.AsyncClient, settings: Settings, delivery_id: int, to: str, body: str) -> str:
    key = idempotency_key(delivery_id)
    resp = await client.post(
        f"{settings.sms_gateway_url.rstrip('/')}/sms",
        json={"to": to, "text": f"{SMS_SIGN}{body}", "client_ref": key},
        headers={"Idempotency-Key": key},
        timeout=10.0,
    )
    if resp.status_code in (200, 201, 202):
        data: dict[str, Any] = resp.json()
        return str(data.get("message_id", key))
    if 400 <= resp.status_code < 500 and resp.status_code not in (408, 409, 425, 429):
        raise PermanentFailure(f"短信网关拒绝 HTTP {resp.status_code}: {resp.text[:200]}")
    raise RuntimeError(f"短信网关暂时不可用 HTTP {resp.status_code}")


async def send_email(settings: Settings, delivery_id: int, to: str, subject: str, body: str) -> str:
    msg = EmailMessage()
    msg["From"] = MAIL_FROM
    msg["To"] = to
    msg["Subject"] = f"[浙江专精特新] {subject}"
    msg["Message-ID"] = message_id(delivery_id)
    msg["X-Zjtx-Delivery"] = str(delivery_id)
    msg["X-Zjtx-Idempotency-Key"] = idempotency_key(delivery_id)
    msg.set_content(body)
    try:
        await aiosmtplib.send(msg, hostname=settings.smtp_host, port=settings.smtp_port, timeout=10, start_tls=False)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise PermanentFailure(f"邮件地址被拒绝: {exc}") from exc
    return message_id(delivery_id)


AfterSend = Callable[[int], Awaitable[None]]


async def claim(
    session_factory: async_sessionmaker[AsyncSession], now: datetime, batch: int, lease_seconds: float,
    claimed_by: int | None = None,
) -> list[dict[str, Any]]:
    """Claim due rows (and 'sending' rows whose worker is gone) with FOR UPDATE SKIP LOCKED; commit the claim."""
    stale = now - timedelta(seconds=lease_seconds)
    async with session_factory() as session, session.begin():
        return await notice_repo.claim_due(session, now, stale, batch, claimed_by)


async def deliver_due(
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: httpx.AsyncClient,
    *,
    now: datetime | None = None,
    batch: int = 50,
    lease_seconds: float = LEASE_SECONDS,
    after_send: AfterSend | None = None,
    stopping: asyncio.Event | None = None,
    lease: WorkerLease | None = None,
) -> int:
    """One pass: claim, send, record. Returns how many rows were processed. ``after_send`` is a test hook
    called after the provider accepted and before the row is marked sent (raise there to simulate a crash).
    ``lease`` is the worker process's lease (the service's worker always has one): its rows are taken over as
    soon as the process is gone; without one only the time lease frees them.

    When ``stopping`` is set (the service is shutting down) the send in flight finishes and the claimed rows not
    yet tried are handed back at once (pending, attempt not counted), so the next start sends them without
    waiting for the lease to expire."""
    now = now or datetime.now(UTC)
    key = await lease.key() if lease is not None else None
    rows = await claim(session_factory, now, batch, lease_seconds, key)

    async def one(row: dict[str, Any]) -> None:
        did = int(row["id"])
        values: dict[str, Any]
        try:
            if row["channel"] == "sms":
                ref = await send_sms(client, settings, did, row["address"], row["body"])
            else:
                ref = await send_email(settings, did, row["address"], row["title"], row["body"])
        except PermanentFailure as exc:
            values = {"status": "failed", "last_error": str(exc)[:2000]}
        except Exception as exc:
            attempts = int(row["attempts"]) + 1
            if attempts >= MAX_ATTEMPTS:
                values = {"status": "failed", "last_error": f"{type(exc).__name__}: {exc}"[:2000]}
            else:
                values = {
                    "status": "pending", "last_error": f"{type(exc).__name__}: {exc}"[:2000],
                    "next_attempt_at": datetime.now(UTC) + timedelta(seconds=backoff_seconds(attempts)),
                }
            log.warning("delivery %s failed (attempt %s): %s", did, attempts, exc)
        else:
            if after_send is not None:
                await after_send(did)
            values = {"status": "sent", "sent_at": datetime.now(UTC), "provider_ref": ref, "last_error": None}
        async with session_factory() as session, session.begin():
            await notice_repo.finish_delivery(session, did, values, key)

    for i, row in enumerate(rows):
        if stopping is not None and stopping.is_set():
            async with session_factory() as session, session.begin():
                await notice_repo.release_deliveries(session, [int(r["id"]) for r in rows[i:]])
            return i
        await one(row)
    return len(rows)


async def delivery_worker(runtime: Any, interval: float = 0.3) -> None:
    """Long-running worker started with the service (``spec.workers``), under a lease of its process's own."""
    lease = WorkerLease(asyncpg_dsn(runtime.settings.database_url))
    try:
        async with httpx.AsyncClient() as client:
            while not runtime.stopping.is_set():
                try:
                    n = await deliver_due(runtime.session_factory, runtime.settings, client,
                                          stopping=runtime.stopping, lease=lease)
                except Exception:
                    log.exception("delivery worker pass failed")
                    # what this pass had claimed and not recorded (the database went away mid-pass) is taken over
                    # by the next pass at once, under a new lease, instead of waiting out the time lease
                    with contextlib.suppress(Exception):
                        await lease.close()
                    n = 0
                if n == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(runtime.stopping.wait(), timeout=interval)
    finally:
        await lease.close()

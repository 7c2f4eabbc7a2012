"""Delivery worker: sends the SMS and email rows of ``deliveries`` with retries, backoff and a status each.

State machine per row: pending|deferred --claim--> sending --provider accepted--> sent
                                                    sending --error--> pending (backoff) | failed (give up)
The claim (status 'sending', claimed_at, attempts+1) commits *before* the provider call. A worker that dies
after the provider accepted leaves the row in 'sending'; after the lease expires another worker re-sends it
with the same provider idempotency key (SMS: the gateway drops the duplicate) or the same Message-ID
(email: SMTP has no idempotency, so the recipient may get a second copy with an identical Message-ID, which
mail clients collapse — the residual at-least-once window is lease-length, only on a crash between the
server's 250 and our commit).
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
    msg.set_content(body)
    try:
        await aiosmtplib.send(msg, hostname=settings.smtp_host, port=settings.smtp_port, timeout=10, start_tls=False)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise PermanentFailure(f"邮件地址被拒绝: {exc}") from exc
    return message_id(delivery_id)


AfterSend = Callable[[int], Awaitable[None]]


async def claim(
    session_factory: async_sessionmaker[AsyncSession], now: datetime, batch: int, lease_seconds: float
) -> list[dict[str, Any]]:
    """Claim due rows (and stale 'sending' rows whose worker died) with FOR UPDATE SKIP LOCKED; commit the claim."""
    stale = now - timedelta(seconds=lease_seconds)
    async with session_factory() as session, session.begin():
        return await notice_repo.claim_due(session, now, stale, batch)


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
) -> int:
    """One pass: claim, send, record. Returns how many rows were processed. ``after_send`` is a test hook
    called after the provider accepted and before the row is marked sent (raise there to simulate a crash).

    When ``stopping`` is set (the service is shutting down) the send in flight finishes and the claimed rows not
    yet tried are handed back at once (pending, attempt not counted), so the next start sends them without
    waiting for the lease to expire."""
    now = now or datetime.now(UTC)
    rows = await claim(session_factory, now, batch, lease_seconds)

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
            await notice_repo.finish_delivery(session, did, values)

    for i, row in enumerate(rows):
        if stopping is not None and stopping.is_set():
            async with session_factory() as session, session.begin():
                await notice_repo.release_deliveries(session, [int(r["id"]) for r in rows[i:]])
            return i
        await one(row)
    return len(rows)


async def delivery_worker(runtime: Any, interval: float = 0.3) -> None:
    """Long-running worker started with the service (``spec.workers``)."""
    async with httpx.AsyncClient() as client:
        while not runtime.stopping.is_set():
            try:
                n = await deliver_due(runtime.session_factory, runtime.settings, client, stopping=runtime.stopping)
            except Exception:
                log.exception("delivery worker pass failed")
                n = 0
            if n == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(runtime.stopping.wait(), timeout=interval)

"""Delivery worker: quiet hours, urgent bypass, retries with backoff, crash after the provider accepted, a dead
worker's rows taken over at once (its lease), each delivery reaching its provider once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notification.app.delivery import deliver_due
from services.notification.db.models import deliveries
from services.notification.domain.schedule import CST
from services.notification.fake_providers import Mailbox
from shared.db import asyncpg_dsn
from shared.leases import WorkerLease
from tests.harness import auth, running_service, settings
from tests.notification.conftest import apply, event, registered, uscc

MOBILE, EMAIL = "13900000111", "liaison111@example.cn"


@pytest.fixture
async def api(clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]]) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service("notification", **providers[1]) as (_, client):
        yield client


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def review(u: str) -> Any:
    return event("zjtx.evaluation.review.decided.v1", u, {
        "application_id": "app-1", "uscc": u, "region_code": "330110", "tier": "srdi", "stage": "county",
        "decision": "approved", "comment": "材料齐全"}, "330110")


def revoked(u: str) -> Any:
    return event("zjtx.evaluation.tier.revoked.v1", u, {
        "recognition_id": "rec-x", "uscc": u, "region_code": "330110", "tier": "srdi", "level": "province",
        "ground": "数据造假", "revoked_on": "2026-11-20", "ban_until": "2029-11-20"}, "330110")


async def rows(sf: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with sf() as s:
        return [dict(r) for r in (await s.execute(select(deliveries).order_by(deliveries.c.id))).mappings().all()]


async def test_quiet_hours_defer_non_urgent_but_not_urgent(
    api: httpx.AsyncClient, http: httpx.AsyncClient, clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]],
    sf: async_sessionmaker[AsyncSession],
) -> None:
    cfg = settings("notification", **providers[1])
    u = uscc()
    await apply(sf, registered(u, "330110", "余杭安静科技有限公司", MOBILE, EMAIL))
    now_cst = datetime.now(CST)
    start, end = (now_cst - timedelta(hours=1)).time(), (now_cst + timedelta(hours=1)).time()
    r = await api.put("/api/v1/notifications/preferences", headers=auth("enterprise", "330110", uscc=u),
                      json={"sms": True, "email": True, "quiet_start": start.strftime("%H:%M"),
                            "quiet_end": end.strftime("%H:%M")})
    assert r.status_code == 200, r.text
    await apply(sf, review(u))
    got = await rows(sf)
    assert [(d["channel"], d["status"]) for d in got] == [("sms", "deferred"), ("email", "deferred")]
    assert got[0]["next_attempt_at"] > datetime.now(UTC) + timedelta(minutes=50)
    assert await deliver_due(sf, cfg, http) == 0 and clean.sms == []
    # the inbox shows it at once, with the deferred delivery status
    inbox = (await api.get("/api/v1/notifications", headers=auth("enterprise", "330110", uscc=u))).json()
    assert inbox["items"][0]["deliveries"][0]["status"] in ("deferred",)

    # urgent (revocation) goes out now despite quiet hours
    await apply(sf, revoked(u))
    assert await deliver_due(sf, cfg, http) == 2
    assert len(clean.sms) == 1 and "撤销" in clean.sms[0]["text"] and len(clean.emails) == 1

    # when the window ends, the deferred ones go
    assert await deliver_due(sf, cfg, http, now=got[0]["next_attempt_at"] + timedelta(seconds=1)) == 2
    assert len(clean.sms_to(MOBILE)) == 2 and {d["status"] for d in await rows(sf)} == {"sent"}


async def test_channel_preferences_off(
    api: httpx.AsyncClient, sf: async_sessionmaker[AsyncSession]
) -> None:
    u = uscc()
    await apply(sf, registered(u, "330110", "余杭少打扰科技有限公司", MOBILE, EMAIL))
    r = await api.put("/api/v1/notifications/preferences", headers=auth("enterprise", "330110", uscc=u),
                      json={"sms": False, "email": True})
    assert r.status_code == 200
    bad = await api.put("/api/v1/notifications/preferences", headers=auth("enterprise", "330110", uscc=u),
                        json={"sms": False, "quiet_start": "22:00"})
    assert bad.status_code == 422
    await apply(sf, review(u))
    assert [d["channel"] for d in await rows(sf)] == ["email"]


async def test_worker_crash_after_provider_accepted_does_not_resend(
    clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]], http: httpx.AsyncClient,
    sf: async_sessionmaker[AsyncSession],
) -> None:
    cfg = settings("notification", **providers[1])
    u = uscc()
    await apply(sf, registered(u, "330110", "余杭崩溃测试有限公司", MOBILE, EMAIL))
    ev = review(u)
    await apply(sf, ev)

    class Crash(Exception):
        pass

    ids = {d["channel"]: d["id"] for d in await rows(sf)}

    def die_on(channel: str) -> Any:
        async def hook(delivery_id: int) -> None:
            if delivery_id == ids[channel]:
                raise Crash
        return hook

    # pass 1: the gateway accepted the SMS, then the worker died before recording it
    with pytest.raises(Crash):
        await deliver_due(sf, cfg, http, after_send=die_on("sms"))
    assert [d["status"] for d in await rows(sf)] == ["sending", "sending"] and len(clean.sms) == 1
    assert await deliver_due(sf, cfg, http) == 0  # within the lease nobody touches the rows
    # pass 2 (lease expired): the SMS is re-sent with the same idempotency key, the gateway drops it;
    # this time the worker dies after the mail server accepted the e-mail
    later = datetime.now(UTC) + timedelta(minutes=5)
    with pytest.raises(Crash):
        await deliver_due(sf, cfg, http, now=later, after_send=die_on("email"))
    assert len(clean.sms) == 1 and clean.sms_requests == 2
    # pass 3: the e-mail is re-sent with the same Message-ID; the mail provider delivers it once
    assert await deliver_due(sf, cfg, http, now=later + timedelta(minutes=5)) == 1
    assert len(clean.emails) == 1 and clean.email_duplicates == 1
    assert len(clean.sms) == 1 and clean.sms_duplicates == 1
    assert {d["status"] for d in await rows(sf)} == {"sent"}
    # the event delivered again creates nothing new
    await apply(sf, ev)
    assert len(await rows(sf)) == 2


async def test_gateway_error_retries_with_backoff(
    clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]], http: httpx.AsyncClient,
    sf: async_sessionmaker[AsyncSession],
) -> None:
    cfg = settings("notification", **providers[1])
    u = uscc()
    await apply(sf, registered(u, "330110", "余杭重试科技有限公司", MOBILE, None))
    await apply(sf, review(u))
    clean.sms_fail_next = 1
    assert await deliver_due(sf, cfg, http) == 1
    (row,) = await rows(sf)
    assert row["status"] == "pending" and row["attempts"] == 1 and "503" in row["last_error"]
    assert row["next_attempt_at"] > datetime.now(UTC)
    assert await deliver_due(sf, cfg, http) == 0  # backoff not over
    assert await deliver_due(sf, cfg, http, now=row["next_attempt_at"] + timedelta(seconds=1)) == 1
    (row,) = await rows(sf)
    assert row["status"] == "sent" and row["attempts"] == 2 and len(clean.sms) == 1


async def test_permanent_refusal_fails_without_retry(
    clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]], http: httpx.AsyncClient,
    sf: async_sessionmaker[AsyncSession],
) -> None:
    cfg = settings("notification", **providers[1])
    u = uscc()
    await apply(sf, registered(u, "330110", "余杭错号科技有限公司", "12345", None))
    await apply(sf, review(u))
    assert await deliver_due(sf, cfg, http) == 1
    (row,) = await rows(sf)
    assert row["status"] == "failed" and "400" in row["last_error"] and row["attempts"] == 1
    assert await deliver_due(sf, cfg, http, now=datetime.now(UTC) + timedelta(days=1)) == 0
    assert clean.sms == []


async def test_liaison_known_after_the_notice_gets_it_once(
    clean: Mailbox, sf: async_sessionmaker[AsyncSession]
) -> None:
    """Topics are not ordered with each other: recognition may arrive before the registry's liaison."""
    from tests.notification.conftest import recognised

    u = uscc()
    await apply(sf, recognised(u, "330110", "innovative"))  # no commissioner, no liaison yet
    assert await rows(sf) == []
    await apply(sf, registered(u, "330110", "余杭迟到科技有限公司", MOBILE, EMAIL))
    got = await rows(sf)
    assert sorted(d["channel"] for d in got) == ["email", "sms"] and {d["address"] for d in got} == {MOBILE, EMAIL}
    # an update with the same contact adds nothing
    await apply(sf, registered(u, "330110", "余杭迟到科技有限公司", MOBILE, EMAIL, version=2))
    assert len(await rows(sf)) == 2


async def test_stopping_worker_finishes_the_send_in_flight_and_hands_the_rest_back(
    clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]], http: httpx.AsyncClient,
    sf: async_sessionmaker[AsyncSession],
) -> None:
    """A service stopping mid-pass: no row is left 'sending' for the 120 s lease, none is sent twice."""
    cfg = settings("notification", **providers[1])
    u = uscc()
    await apply(sf, registered(u, "330110", "余杭停机科技有限公司", MOBILE, EMAIL))
    await apply(sf, review(u))
    await apply(sf, revoked(u))  # 4 deliveries: 2 notices × SMS and e-mail
    stopping = asyncio.Event()

    async def stop_after_first(_: int) -> None:
        stopping.set()

    assert await deliver_due(sf, cfg, http, after_send=stop_after_first, stopping=stopping) == 1
    got = await rows(sf)
    assert sorted(d["status"] for d in got) == ["pending", "pending", "pending", "sent"]
    assert all(d["attempts"] == 0 and d["claimed_at"] is None for d in got if d["status"] == "pending")
    assert len(clean.sms) + len(clean.emails) == 1
    # the next start sends the rest at once (no lease to wait for), each once
    assert await deliver_due(sf, cfg, http) == 3
    assert {d["status"] for d in await rows(sf)} == {"sent"}
    assert len(clean.sms) == 2 and len(clean.emails) == 2
    assert len({m["key"] for m in clean.sms}) == 2


def _lease() -> WorkerLease:
    return WorkerLease(asyncpg_dsn(settings("notification").database_url))


async def test_rows_of_a_worker_whose_lease_ended_are_taken_over_at_once_not_while_it_lives(
    clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]], http: httpx.AsyncClient,
    sf: async_sessionmaker[AsyncSession],
) -> None:
    cfg = settings("notification", **providers[1])
    u = uscc()
    await apply(sf, registered(u, "330110", "余杭租约科技有限公司", MOBILE, EMAIL))
    await apply(sf, review(u))
    first, second = _lease(), _lease()

    class Crash(Exception):
        pass

    async def die(_: int) -> None:
        raise Crash

    try:
        with pytest.raises(Crash):  # the provider accepted the first send, the pass died before recording it
            await deliver_due(sf, cfg, http, after_send=die, lease=first)
        got = await rows(sf)
        assert [d["status"] for d in got] == ["sending", "sending"]
        assert {d["claimed_by"] for d in got} == {first.current}
        assert await deliver_due(sf, cfg, http, lease=second) == 0, "a live worker's rows stay its own"
        await first.close()  # its process ended, as far as PostgreSQL can tell
        assert await deliver_due(sf, cfg, http, lease=second) == 2, "taken over at once, not after 120 s"
        assert {d["status"] for d in await rows(sf)} == {"sent"}
        assert len(clean.sms) + len(clean.emails) == 2 and clean.sms_duplicates + clean.email_duplicates == 1
    finally:
        await first.close()
        await second.close()


_KILLED_WORKER = """
import asyncio, os, signal, sys
import httpx
from services.notification.app.delivery import deliver_due
from shared.db import asyncpg_dsn, create_engine, make_session_factory
from shared.leases import WorkerLease
from shared.settings import Settings

async def main() -> None:
    cfg = Settings(service="notification", sms_gateway_url=sys.argv[1], smtp_host="127.0.0.1",
                   smtp_port=int(sys.argv[2]))
    sf = make_session_factory(create_engine(cfg.database_url, 2))
    async def killed(_: int) -> None:
        os.kill(os.getpid(), signal.SIGKILL)  # the provider accepted; the process dies before recording it
    async with httpx.AsyncClient() as client:
        await deliver_due(sf, cfg, client, after_send=killed, lease=WorkerLease(asyncpg_dsn(cfg.database_url)))

asyncio.run(main())
"""


async def test_sigkilled_worker_rows_are_sent_by_the_next_pass_at_once_and_reach_the_provider_once(
    clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]], http: httpx.AsyncClient,
    sf: async_sessionmaker[AsyncSession],
) -> None:
    """The chaos run's finding: after a SIGKILL of the notification service its claimed rows waited out the 120 s
    lease (unsent when the check ran) and the e-mail it had handed to the mail server arrived twice."""
    cfg = settings("notification", **providers[1])
    u = uscc()
    await apply(sf, registered(u, "330110", "余杭猝死科技有限公司", MOBILE, EMAIL))
    await apply(sf, review(u))
    await apply(sf, revoked(u))  # 4 deliveries
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", _KILLED_WORKER, cfg.sms_gateway_url, str(cfg.smtp_port)],
        env=os.environ.copy(), capture_output=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    got = await rows(sf)
    assert [d["status"] for d in got] == ["sending"] * 4 and len(clean.sms) + len(clean.emails) == 1
    lease = _lease()
    try:
        assert await deliver_due(sf, cfg, http, lease=lease) == 4  # no waiting for the lease to expire
    finally:
        await lease.close()
    assert {d["status"] for d in await rows(sf)} == {"sent"}
    # each delivery reached its provider once: the re-sent one was deduplicated on its key
    assert len(clean.sms) == 2 and len({m["key"] for m in clean.sms}) == 2
    assert len(clean.emails) == 2 and len({m["message_id"] for m in clean.emails}) == 2
    assert clean.sms_duplicates + clean.email_duplicates == 1

"""Every fault leaves exactly one payment: crash after the gateway accepted, timeout after success, two workers,
the gateway answering twice, transient and permanent failures, a worker process SIGKILLed mid-payment (its
instruction taken over at once, through its lease, and still paid once)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from services.finance.app import payments
from services.finance.db.models import DisbursementRow
from shared.db import asyncpg_dsn
from shared.leases import WorkerLease
from tests.finance.util import (
    FAST,
    apply_recognised,
    budget,
    entitlements_of,
    money,
    new_uscc,
    pay_lines,
    recognised,
    seed,
)
from tests.harness import auth, running_service, runtime_of, settings

BUDGETS = {("330100", "sme_development", 2026): "100000000.00"}


async def _approved(client: Any, sf: Any, n: int = 1) -> list[str]:
    ids = []
    for _ in range(n):
        uscc = new_uscc("330110")
        await apply_recognised(sf, recognised(uscc, "330110", "srdi", "province", 2026))
        ent = next(e for e in await entitlements_of(sf, uscc) if e.jurisdiction == "330100")
        r = await client.post(f"/api/v1/entitlements/{ent.id}/approve", headers=money(auth("city_official", "330100")))
        assert r.status_code == 200, r.text
        ids.append(str(ent.id))
    return ids


async def _states(sf: Any) -> list[str]:
    async with sf() as s:
        return [d.state for d in (await s.execute(select(DisbursementRow))).scalars()]


class Crash(Exception):
    pass


async def test_worker_killed_after_gateway_accepted(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, BUDGETS)
        await _approved(client, sf)
        gw = payments.GatewayClient(gateway.url, FAST.timeout)

        async def crash(d: Any, result: Any) -> None:
            raise Crash("worker killed after the gateway accepted")

        with pytest.raises(Crash):
            await payments.process_one(sf, gw, FAST, crash_hook=crash)
        assert gateway.gw.paid_count == 1
        assert await _states(sf) == ["sent"]  # nothing recorded yet
        assert await payments.process_one(sf, gw, FAST) is None  # lease still held: no second send
        await asyncio.sleep(FAST.lease_seconds + 0.1)
        assert await payments.process_one(sf, gw, FAST) == "paid"  # a new worker run finds it paid by key
        assert gateway.gw.paid_count == 1
        assert sum(gateway.gw.calls.values()) == 1  # the retry asked by key, it did not POST again
        assert await _states(sf) == ["paid"]
        assert await pay_lines(sf) == 2
        b = await budget(sf, "330100", "sme_development", 2026)
        assert b.spent == Decimal("500000.00") and b.reserved == 0


async def test_gateway_times_out_after_succeeding(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, BUDGETS)
        await _approved(client, sf)
        gw = payments.GatewayClient(gateway.url, 0.3)
        gateway.gw.delay_after_success = 1.0
        assert await payments.process_one(sf, gw, FAST) == "retry"
        assert gateway.gw.paid_count == 1
        gateway.gw.delay_after_success = 0.0
        await asyncio.sleep(0.15)
        assert await payments.drain(sf, gw, FAST) == ["paid"]
        assert gateway.gw.paid_count == 1
        assert await pay_lines(sf) == 2
        assert await _states(sf) == ["paid"]


async def test_two_workers_process_the_same_work(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, BUDGETS)
        await _approved(client, sf, 8)
        gw = payments.GatewayClient(gateway.url, 2.0)
        slow = dataclasses.replace(FAST, lease_seconds=30)
        results = await asyncio.gather(*(payments.drain(sf, gw, slow) for _ in range(3)))
        assert sorted(r for rs in results for r in rs) == ["paid"] * 8
        assert gateway.gw.paid_count == 8
        assert all(n == 1 for n in gateway.gw.calls.values())
        assert await pay_lines(sf) == 16
        b = await budget(sf, "330100", "sme_development", 2026)
        assert b.spent == Decimal("4000000.00")


async def test_gateway_answers_twice_ledger_records_once(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, BUDGETS)
        await _approved(client, sf)
        gw = payments.GatewayClient(gateway.url, FAST.timeout)
        gateway.gw.answer_twice = True
        assert await payments.drain(sf, gw, FAST) == ["paid"]
        # a lost state update makes the instruction look unsent again: the gateway answers "success" a second time
        async with sf() as s, s.begin():
            await s.execute(update(DisbursementRow).values(state="pending", attempts=0, next_attempt_at=func.now()))
        assert await payments.drain(sf, gw, FAST) == ["duplicate"]
        assert gateway.gw.paid_count == 1
        assert await pay_lines(sf) == 2
        b = await budget(sf, "330100", "sme_development", 2026)
        assert b.spent == Decimal("500000.00") and b.reserved == 0


async def test_transient_failures_retry_with_backoff_then_pay(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, BUDGETS)
        await _approved(client, sf)
        gw = payments.GatewayClient(gateway.url, FAST.timeout)
        gateway.gw.fail_next = 2
        outcomes = []
        for _ in range(20):
            r = await payments.process_one(sf, gw, FAST)
            if r is not None:
                outcomes.append(r)
            if r == "paid":
                break
            await asyncio.sleep(0.05)
        assert outcomes == ["retry", "retry", "paid"]
        assert gateway.gw.paid_count == 1


async def test_permanent_rejection_fails_then_official_retries(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, BUDGETS)
        await _approved(client, sf)
        gw = payments.GatewayClient(gateway.url, FAST.timeout)
        gateway.gw.reject_next = 1
        assert await payments.drain(sf, gw, FAST) == ["failed"]
        r = await client.get(
            "/api/v1/disbursements", params={"state": "failed"}, headers=auth("city_official", "330100")
        )
        assert len(r.json()) == 1 and "拒绝" in r.json()[0]["last_error"]
        did = r.json()[0]["id"]
        b = await budget(sf, "330100", "sme_development", 2026)
        assert b.reserved == Decimal("500000.00")  # still owed: the reservation stays
        # the official who approved it cannot send it again (separation of duties); another official can
        r = await client.post(f"/api/v1/disbursements/{did}/retry", headers=money(auth("city_official", "330100")))
        assert r.status_code == 403 and "审批人" in r.json()["detail"]
        second = auth("city_official", "330100", sub="hz-finance-2")
        r = await client.post(f"/api/v1/disbursements/{did}/retry", headers=money(second))
        assert r.status_code == 200 and r.json()["state"] == "pending"
        assert await payments.drain(sf, gw, FAST) == ["paid"]
        assert gateway.gw.paid_count == 1
        r = await client.post(
            f"/api/v1/disbursements/{uuid.uuid4()}/retry", headers=money(auth("city_official", "330100"))
        )
        assert r.status_code == 404


async def test_revoked_while_payment_in_flight_is_recovered_once_paid(gateway) -> None:  # type: ignore[no-untyped-def]
    from services.finance.db.models import EntitlementRow, RecoveryRow
    from tests.finance.util import apply_revoked, revoked

    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, BUDGETS)
        uscc = new_uscc("330110")
        await apply_recognised(sf, recognised(uscc, "330110", "srdi", "province", 2026, recognition_id="R-fly"))
        ent = next(e for e in await entitlements_of(sf, uscc) if e.jurisdiction == "330100")
        r = await client.post(f"/api/v1/entitlements/{ent.id}/approve", headers=money(auth("city_official", "330100")))
        assert r.status_code == 200
        gw = payments.GatewayClient(gateway.url, FAST.timeout)

        async def crash(d: Any, result: Any) -> None:
            raise Crash("killed")

        with pytest.raises(Crash):
            await payments.process_one(sf, gw, FAST, crash_hook=crash)
        await apply_revoked(sf, revoked(uscc, "330110", "R-fly"))
        async with sf() as s:
            row = await s.get(EntitlementRow, ent.id)
            assert row is not None and row.status == "approved" and row.revocation_reason
        await asyncio.sleep(FAST.lease_seconds + 0.1)
        assert await payments.drain(sf, gw, FAST) == ["paid"]
        async with sf() as s:
            row = await s.get(EntitlementRow, ent.id)
            recs = list((await s.execute(select(RecoveryRow))).scalars())
        assert row is not None and row.status == "recovering"
        assert [r.amount for r in recs] == [Decimal("500000.00")]
        assert gateway.gw.paid_count == 1


def _lease() -> WorkerLease:
    return WorkerLease(asyncpg_dsn(settings("finance").database_url))


async def test_instruction_of_a_worker_whose_lease_ended_is_taken_over_at_once(gateway) -> None:  # type: ignore[no-untyped-def]
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, BUDGETS)
        await _approved(client, sf)
        gw = payments.GatewayClient(gateway.url, 2.0)
        cfg = payments.WorkerConfig()  # the service's: a 60 s time lease
        first, second = _lease(), _lease()

        async def crash(d: Any, result: Any) -> None:
            raise Crash("the pass died after the gateway accepted")

        try:
            with pytest.raises(Crash):
                await payments.process_one(sf, gw, cfg, crash_hook=crash, lease=first)
            assert await _states(sf) == ["sent"] and gateway.gw.paid_count == 1
            assert await payments.process_one(sf, gw, cfg, lease=second) is None, "a live worker's claim stays"
            await first.close()
            assert await payments.process_one(sf, gw, cfg, lease=second) == "paid", "taken over at once"
        finally:
            await first.close()
            await second.close()
        assert gateway.gw.paid_count == 1 and sum(gateway.gw.calls.values()) == 1  # looked up by key, not paid again
        assert await _states(sf) == ["paid"] and await pay_lines(sf) == 2


_KILLED_WORKER = """
import asyncio, os, signal, sys
from services.finance.app import payments
from shared.db import asyncpg_dsn, create_engine, make_session_factory
from shared.leases import WorkerLease
from shared.settings import Settings

async def main() -> None:
    cfg = Settings(service="finance")
    sf = make_session_factory(create_engine(cfg.database_url, 2))
    async def killed(d, result) -> None:
        os.kill(os.getpid(), signal.SIGKILL)  # the gateway paid; the process dies before recording it
    await payments.process_one(sf, payments.GatewayClient(sys.argv[1], 5.0), payments.WorkerConfig(),
                               crash_hook=killed, lease=WorkerLease(asyncpg_dsn(cfg.database_url)))

asyncio.run(main())
"""


async def test_sigkilled_worker_instruction_is_paid_by_the_next_claim_at_once_and_once(gateway) -> None:  # type: ignore[no-untyped-def]
    """The chaos run's finding (seed 3): an entitlement claimed by a SIGKILLed finance process stayed unpaid until
    its 60 s lease ran out, after the check had run."""
    async with running_service("finance") as (app, client):
        sf = runtime_of(app).session_factory
        await seed(sf, BUDGETS)
        await _approved(client, sf)
        proc = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", _KILLED_WORKER, gateway.url], env=os.environ.copy(),
            capture_output=True, timeout=60, check=False)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
        assert await _states(sf) == ["sent"] and gateway.gw.paid_count == 1
        lease = _lease()
        try:
            outcome = await payments.process_one(sf, payments.GatewayClient(gateway.url, 2.0),
                                                 payments.WorkerConfig(), lease=lease)
        finally:
            await lease.close()
        assert outcome == "paid"
        assert gateway.gw.paid_count == 1 and sum(gateway.gw.calls.values()) == 1
        assert await _states(sf) == ["paid"] and await pay_lines(sf) == 2
        b = await budget(sf, "330100", "sme_development", 2026)
        assert b.spent == Decimal("500000.00") and b.reserved == 0

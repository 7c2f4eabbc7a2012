"""Disbursement: an outbox-driven worker sends payment instructions to the treasury/bank gateway.

States: pending → sent → paid | failed. The worker claims a due instruction with ``FOR UPDATE SKIP LOCKED``,
marks it ``sent`` with a lease and commits *before* calling the gateway, so two workers never send the same
instruction at once. The lease is the worker process's lease key (``claimed_by``, ``shared.leases``): when the
process dies (SIGKILL, OOM) PostgreSQL frees it and the next claim takes the instruction over at once; the time
lease (``next_attempt_at``, ``WorkerConfig.lease_seconds``) is the backstop for a worker that is alive but stuck.
Every call carries the instruction's idempotency key: the gateway dedupes by it, and a retry first asks the
gateway whether the key was already paid. Recording is a conditional UPDATE (``WHERE state='sent'``) plus a ledger
line that exists at most once per entitlement, so however many times the gateway answers, and however many
workers took the instruction over, the ledger records one payment.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.finance.app import entitlements as ents
from services.finance.db import budgets as budget_repo
from services.finance.db import disbursements as repo
from services.finance.db import entitlements as ent_repo
from services.finance.db.models import DisbursementRow, backbone
from services.finance.domain.money import fmt, q
from services.finance.events import contracts as ev
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.db import asyncpg_dsn
from shared.events.outbox import emit
from shared.leases import WorkerLease
from shared.problems import Problem, not_found

log = logging.getLogger(__name__)


class GatewayRejected(Exception):
    """The gateway refused the instruction for good (4xx): no retry."""


class GatewayUnavailable(Exception):
    """5xx or transport trouble: retry with backoff."""


@dataclass
class WorkerConfig:
    timeout: float = 10.0
    lease_seconds: float = 60.0
    backoff_base: float = 2.0
    backoff_max: float = 300.0
    max_attempts: int = 8
    poll_interval: float = 1.0


CONFIG = WorkerConfig()
CrashHook = Callable[[DisbursementRow, dict[str, Any]], Awaitable[None]]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class GatewayClient:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _client(self) -> httpx.AsyncClient:
        # one TLS context for the process: httpx builds one per client otherwise (loading the CA store), which was
        # most of the CPU of paying the demo's entitlements
        return httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout, verify=_tls_context())

    async def pay(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self._client() as c:
            try:
                r = await c.post("/payments", json=body, headers={"Idempotency-Key": key})
            except httpx.TimeoutException as exc:
                raise GatewayUnavailable(f"网关超时 (timeout): {exc!r}") from exc
            except httpx.TransportError as exc:
                raise GatewayUnavailable(f"网关不可达 (transport): {exc!r}") from exc
        if r.status_code >= 500:
            raise GatewayUnavailable(f"网关错误 HTTP {r.status_code}: {r.text[:200]}")
        if r.status_code >= 400:
            raise GatewayRejected(f"网关拒绝 HTTP {r.status_code}: {r.text[:200]}")
        data: dict[str, Any] = r.json()
        return data

    async def lookup(self, key: str) -> dict[str, Any] | None:
        async with self._client() as c:
            try:
                r = await c.get(f"/payments/{key}")
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise GatewayUnavailable(f"网关查询失败: {exc!r}") from exc
        if r.status_code == 404:
            return None
        if r.status_code >= 400:
            raise GatewayUnavailable(f"网关查询错误 HTTP {r.status_code}")
        data: dict[str, Any] = r.json()
        return data

    async def statement(self, on: date) -> list[dict[str, Any]]:
        async with self._client() as c:
            r = await c.get("/statements", params={"date": on.isoformat()})
        r.raise_for_status()
        items: list[dict[str, Any]] = r.json()["items"]
        return items


def backoff(attempts: int, cfg: WorkerConfig) -> float:
    return float(min(cfg.backoff_base * (2 ** max(attempts - 1, 0)), cfg.backoff_max))


async def _claim(
    sf: async_sessionmaker[AsyncSession], cfg: WorkerConfig, lease: WorkerLease | None
) -> DisbursementRow | None:
    key = await lease.key() if lease is not None else None
    async with sf() as s, s.begin():
        return await repo.claim_due(s, cfg.lease_seconds, key)


async def _record_paid(sf: async_sessionmaker[AsyncSession], d: DisbursementRow, result: dict[str, Any]) -> bool:
    paid_at = datetime.fromisoformat(result["paid_at"]) if result.get("paid_at") else datetime.now(UTC)
    async with sf() as s, s.begin():
        recorded = await repo.update_if_sent(
            s,
            d.id,
            {
                "state": "paid",
                "paid_at": paid_at,
                "gateway_payment_id": str(result.get("payment_id")),
                "last_error": None,
                "updated_at": datetime.now(UTC),
            },
        )
        if not recorded:
            return False
        if not await budget_repo.consume(s, d.jurisdiction, d.fund, d.year, d.amount, d.entitlement_id):
            return False
        ent = await ent_repo.get(s, d.entitlement_id, for_update=True)
        if ent is not None and ent.status == "approved":
            ent.status, ent.updated_at = "paid", datetime.now(UTC)
        await record_audit(
            s,
            backbone,
            None,
            "disbursement.paid",
            "disbursement",
            str(d.id),
            after={"amount": fmt(d.amount), "payment_id": result.get("payment_id")},
        )
        await emit(
            s,
            backbone,
            ev.DISBURSEMENT_PAID,
            d.uscc,
            ev.DisbursementPaid(
                disbursement_id=str(d.id),
                entitlement_id=str(d.entitlement_id),
                uscc=d.uscc,
                region_code=d.region_code,
                amount=fmt(d.amount),
                paid_at=paid_at.isoformat(),
                jurisdiction=d.jurisdiction,
                fund=d.fund,
                year=d.year,
            ),
            regioncode=d.region_code,
        )
        if ent is not None and ent.revocation_reason:
            await ents.raise_recovery(s, ent, ent.revocation_reason)  # revoked while the payment was in flight
        return True


async def _record_failure(
    sf: async_sessionmaker[AsyncSession], d: DisbursementRow, error: str, *, final: bool, cfg: WorkerConfig
) -> None:
    now = datetime.now(UTC)
    async with sf() as s, s.begin():
        values: dict[str, Any] = {"last_error": error[:2000], "updated_at": now}
        if final:
            values["state"] = "failed"
        else:  # waits out its backoff, whoever holds a lease
            values["next_attempt_at"] = now + timedelta(seconds=backoff(d.attempts, cfg))
            values["claimed_by"] = None
        if not await repo.update_if_sent(s, d.id, values) or not final:
            return
        await record_audit(
            s, backbone, None, "disbursement.failed", "disbursement", str(d.id), after={"error": error[:500]}
        )
        await emit(
            s,
            backbone,
            ev.DISBURSEMENT_FAILED,
            d.uscc,
            ev.DisbursementFailed(
                disbursement_id=str(d.id),
                entitlement_id=str(d.entitlement_id),
                uscc=d.uscc,
                region_code=d.region_code,
                amount=fmt(d.amount),
                error=error[:500],
                jurisdiction=d.jurisdiction,
                fund=d.fund,
                year=d.year,
            ),
            regioncode=d.region_code,
        )


async def process_one(
    sf: async_sessionmaker[AsyncSession],
    gateway: GatewayClient,
    cfg: WorkerConfig = CONFIG,
    *,
    crash_hook: CrashHook | None = None,
    lease: WorkerLease | None = None,
) -> str | None:
    """Claim and process one due instruction. Returns the outcome (paid/retry/failed/duplicate) or None.
    ``lease``: the worker process's lease (the service's worker always has one; see the module docstring)."""
    d = await _claim(sf, cfg, lease)
    if d is None:
        return None
    return await process_claimed(sf, gateway, d, cfg, crash_hook=crash_hook)


async def process_claimed(
    sf: async_sessionmaker[AsyncSession],
    gateway: GatewayClient,
    d: DisbursementRow,
    cfg: WorkerConfig = CONFIG,
    *,
    crash_hook: CrashHook | None = None,
) -> str:
    """Send an instruction claimed by this process (``repo.claim_due``) and record the outcome."""
    body = {
        "instruction_id": str(d.id),
        "payee_uscc": d.uscc,
        "amount": fmt(d.amount),
        "currency": "CNY",
        "memo": f"zjtx 奖补拨付 {d.entitlement_id}",
        "payer": f"{d.jurisdiction}/{d.fund}/{d.year}",
    }
    try:
        result = await gateway.lookup(d.idempotency_key) if d.attempts > 1 else None
        if result is None:
            result = await gateway.pay(d.idempotency_key, body)
    except GatewayRejected as exc:
        await _record_failure(sf, d, str(exc), final=True, cfg=cfg)
        return "failed"
    except GatewayUnavailable as exc:
        final = d.attempts >= cfg.max_attempts
        await _record_failure(sf, d, str(exc), final=final, cfg=cfg)
        return "failed" if final else "retry"
    if q(Decimal(str(result.get("amount", d.amount)))) != q(d.amount):
        await _record_failure(sf, d, f"网关金额不一致: {result.get('amount')} != {fmt(d.amount)}", final=True, cfg=cfg)
        return "failed"
    if crash_hook is not None:
        await crash_hook(d, result)  # test hook: the worker dies after the gateway accepted
    return "paid" if await _record_paid(sf, d, result) else "duplicate"


async def drain(sf: async_sessionmaker[AsyncSession], gateway: GatewayClient, cfg: WorkerConfig = CONFIG) -> list[str]:
    out: list[str] = []
    while (r := await process_one(sf, gateway, cfg)) is not None:
        out.append(r)
    return out


async def disbursement_worker(runtime: Any) -> None:
    """Long-running worker started with the service (``spec.workers``), under a lease of its process's own."""
    gateway = GatewayClient(runtime.settings.payment_gateway_url, CONFIG.timeout)
    lease = WorkerLease(asyncpg_dsn(runtime.settings.database_url))
    try:
        while not runtime.stopping.is_set():
            try:
                if await process_one(runtime.session_factory, gateway, CONFIG, lease=lease) is not None:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("disbursement worker error")
                # an instruction claimed and not recorded (the database went away mid-way) is taken over at once,
                # under a new lease, instead of waiting out the time lease (the gateway dedupes the second call)
                with contextlib.suppress(Exception):
                    await lease.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runtime.stopping.wait(), timeout=CONFIG.poll_interval)
    finally:
        await lease.close()


# ------------------------------------------------------------------ reconciliation


async def reconcile(
    session: AsyncSession, gateway: GatewayClient, on: date, covers: Callable[[str], bool]
) -> tuple[int, list[dict[str, Any]]]:
    """Compare the ledger's payments of ``on`` (UTC date) with the gateway's statement for that date."""
    statement = await gateway.statement(on)
    start = datetime(on.year, on.month, on.day, tzinfo=UTC)
    ours = {
        d.idempotency_key: d
        for d in await repo.paid_between(session, start, start + timedelta(days=1))
        if covers(d.jurisdiction)
    }
    theirs = {item["key"]: item for item in statement}
    mismatches: list[dict[str, Any]] = []
    matched = 0
    for key, item in theirs.items():
        d = ours.get(key)
        if d is None:
            known = await repo.by_key(session, key)
            if known is not None and not covers(known.jurisdiction):
                continue
            mismatches.append(
                {
                    "key": key,
                    "kind": "missing_in_ledger",
                    "message": "网关已付款但账本未记为当日已拨付"
                    + (f"(本地状态 {known.state})" if known else "(本地无此指令)"),
                    "gateway_amount": str(item.get("amount")),
                    "ledger_amount": fmt(known.amount) if known else None,
                }
            )
        elif q(Decimal(str(item["amount"]))) != q(d.amount):
            mismatches.append(
                {
                    "key": key,
                    "kind": "amount_mismatch",
                    "message": "金额不一致",
                    "gateway_amount": str(item["amount"]),
                    "ledger_amount": fmt(d.amount),
                }
            )
        else:
            matched += 1
    for key, d in ours.items():
        if key not in theirs:
            mismatches.append(
                {
                    "key": key,
                    "kind": "missing_at_gateway",
                    "message": "账本已记拨付但网关对账单无此笔",
                    "gateway_amount": None,
                    "ledger_amount": fmt(d.amount),
                }
            )
    return matched, mismatches


# ------------------------------------------------------------------ instructions seen by officials


async def listing(session: AsyncSession, principal: Principal, state: str | None) -> list[DisbursementRow]:
    if principal.role == Role.ENTERPRISE:
        return await repo.listing(session, state=state, uscc=principal.uscc)
    return [d for d in await repo.listing(session, state=state, uscc=None) if principal.covers_region(d.jurisdiction)]


async def retry(session: AsyncSession, principal: Principal, disbursement_id: uuid.UUID) -> DisbursementRow:
    """A failed instruction goes back to pending with the same idempotency key (the gateway dedupes)."""
    d = await repo.get(session, disbursement_id, for_update=True)
    if d is None or not principal.covers_region(d.jurisdiction):
        raise not_found("拨付指令")
    if d.state != "failed":
        raise Problem(409, f"指令状态为 {d.state},仅失败指令可重试")
    ent = await ent_repo.get(session, d.entitlement_id)
    if ent is not None and principal.sub in (ent.decided_by, ent.created_by):
        raise Problem(403, "审批人或申报人不能重新发送拨付指令,须由本辖区另一名工作人员操作 (separation of duties)")
    d.state, d.attempts, d.next_attempt_at, d.updated_at = "pending", 0, datetime.now(UTC), datetime.now(UTC)
    await record_audit(session, backbone, principal, "disbursement.retried", "disbursement", str(d.id))
    return d

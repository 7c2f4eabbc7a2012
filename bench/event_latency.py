"""Event latency through the services running as processes, per hop (issue 17 item 2).

    .venv/bin/python bench/event_latency.py [--changes 300] [--fetch-wait MS]

Starts the dev stack (``zjtx run``, small demo load) on a temporary ZJTX_HOME and random ports, registers
``--changes`` fresh enterprises in 余杭 (330110), then one at a time reports a year of indicators that qualifies
for a county pool (``PUT /api/v1/enterprises/{uscc}/indicators/2025`` on the registry as the county official)
and polls (every 3 ms) until the result is readable in evaluation (``GET …/evaluations``) and the pool entry in
registry (``GET /api/v1/enterprises/{uscc}``). The hops come from the broker and the databases afterwards:
    PUT sent → stored         registry.indicator_revisions.reported_at (the PUT's transaction)
             → appended       the indicators.reported record's timestamp on the broker (relay's send)
             → consumed       evaluation.inbox.received_at (the consumer's transaction start; stored with it)
             → readable       the evaluation API answers with the result
             → appended       the evaluation.completed record's timestamp (evaluation's relay)
             → consumed       registry.inbox.received_at
             → readable       the registry API shows the pool entry
Prints p50/p95/p99 of each hop and from PUT to each point. Targets: p95 ≤ 100 ms to evaluation readable,
≤ 200 ms to registry readable. ``--fetch-wait`` sets ZJTX_KAFKA_FETCH_MAX_WAIT_MS for the services (aiokafka's
default is 500) to compare. Never fails on slowness.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

from _stack import Stack, start_stack

EVAL_TARGET_MS = 100
REGISTRY_TARGET_MS = 200
REGION = "330110"
YEAR = 2025
INDICATORS: dict[str, Any] = {  # qualifies for the innovative tier and its county pool (tests/e2e/test_scenario)
    "niche_years": "8", "operating_revenue": "150000000", "operating_revenue_prev1": "130000000",
    "operating_revenue_prev2": "120000000", "main_business_revenue": "140000000",
    "main_business_revenue_prev1": "120000000", "total_assets": "100000000", "total_liabilities": "50000000",
    "net_profit": "15000000", "rd_expense": "6000000", "rd_expense_prev1": "6500000", "rd_staff": 30,
    "employees": 150, "rd_institution_level": "province", "ip_class1": 4, "ip_class1_applied": 4,
    "market_share_pct": "12", "chain_key_role": True, "six_foundations": True, "digital_level": 3,
    "quality_system_certified": True, "own_brand": True, "zj_key_industry": "1",
    "abnormal_operation": False, "serious_dishonesty": False, "major_accident_3y": False,
}
REPORTED = "zjtx.registry.indicators.reported.v1"
COMPLETED = "zjtx.evaluation.evaluation.completed.v1"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class Observer:
    """Reads the two topics from their end (no group), keeping each record's key, type, id and timestamp."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.records: list[tuple[str, str, str, float]] = []  # (key, type, id, broker timestamp s)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition

        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                         fetch_max_wait_ms=20)
        await self.consumer.start()
        parts = []
        for topic in ("zjtx.registry.events", "zjtx.evaluation.events"):
            for p in self.consumer.partitions_for_topic(topic) or await self._partitions(topic):
                parts.append(TopicPartition(topic, p))
        self.consumer.assign(parts)
        await self.consumer.seek_to_end(*parts)
        self.task = asyncio.create_task(self._run())

    async def _partitions(self, topic: str) -> set[int]:
        await self.consumer._client.force_metadata_update()
        return self.consumer.partitions_for_topic(topic) or set()

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for r in records:
                    headers = {k: v.decode() for k, v in r.headers}
                    self.records.append(((r.key or b"").decode(), headers.get("ce_type", ""),
                                         headers.get("ce_id", ""), r.timestamp / 1000))

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        await self.consumer.stop()


async def measure(stack: Stack, changes: int) -> None:
    import asyncpg
    import httpx

    from services.registry.domain.uscc import make_uscc
    from shared.auth import issue_token
    from shared.db import asyncpg_dsn
    from shared.settings import Settings

    token = issue_token(Settings(service="registry"), role="county_official", region=REGION, sub="bench-county")
    headers = {"Authorization": f"Bearer {token}"}
    reg = httpx.AsyncClient(base_url=stack.url("registry"), headers=headers, timeout=30)
    ev = httpx.AsyncClient(base_url=stack.url("evaluation"), headers=headers, timeout=30)
    stamp = uuid.uuid4().int % 10**4
    usccs = [make_uscc(REGION, f"{stamp:04d}{i:04d}") for i in range(changes)]
    for i, uscc in enumerate(usccs):
        r = await reg.post("/api/v1/enterprises", json={
            "uscc": uscc, "name": f"延迟测试企业{stamp}-{i}", "region_code": REGION, "industry_code": "3562",
            "founded_on": "2012-05-01", "liaison": {"name": "王敏", "mobile": "13912345678", "email": "wm@example.cn"},
        })
        assert r.status_code in (200, 201), r.text
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # evaluation has applied the registrations
        known = await conn.fetchval("SELECT count(*) FROM evaluation.enterprises WHERE uscc = ANY($1)", usccs)
        if known == changes:
            break
        await asyncio.sleep(0.2)
    observer = Observer(stack.bootstrap)
    await observer.start()
    await asyncio.sleep(1.0)

    async def until(check: Any) -> float:
        while True:
            if await check():
                return time.time()
            await asyncio.sleep(0.003)

    sent: dict[str, float] = {}
    eval_readable: dict[str, float] = {}
    reg_readable: dict[str, float] = {}
    for uscc in usccs:
        async def eval_ok(uscc: str = uscc) -> bool:
            r = await ev.get(f"/api/v1/enterprises/{uscc}/evaluations")
            return r.status_code == 200 and bool(r.json().get("items"))

        async def reg_ok(uscc: str = uscc) -> bool:
            r = await reg.get(f"/api/v1/enterprises/{uscc}")
            return r.status_code == 200 and bool(r.json().get("pools"))

        sent[uscc] = time.time()
        r = await reg.put(f"/api/v1/enterprises/{uscc}/indicators/{YEAR}", json={"indicators": INDICATORS})
        assert r.status_code == 200, r.text
        done = await asyncio.wait_for(asyncio.gather(until(eval_ok), until(reg_ok)), 30)
        eval_readable[uscc], reg_readable[uscc] = done
    await asyncio.sleep(0.5)
    await observer.stop()
    stored = {r["uscc"]: r["at"].timestamp() for r in await conn.fetch(
        "SELECT uscc, min(reported_at) AS at FROM registry.indicator_revisions WHERE uscc = ANY($1) GROUP BY uscc",
        usccs)}
    inbox_eval = {r["event_id"]: r["received_at"].timestamp() for r in await conn.fetch(
        "SELECT event_id, received_at FROM evaluation.inbox WHERE event_type = $1", REPORTED)}
    inbox_reg = {r["event_id"]: r["received_at"].timestamp() for r in await conn.fetch(
        "SELECT event_id, received_at FROM registry.inbox WHERE event_type = $1", COMPLETED)}
    await conn.close()
    await reg.aclose()
    await ev.aclose()
    first: dict[tuple[str, str], tuple[str, float]] = {}
    for key, typ, eid, ts in observer.records:
        if (key, typ) not in first:
            first[(key, typ)] = (eid, ts)

    points = ["stored (registry)", "appended (indicators.reported)", "consumed + stored (evaluation)",
              "readable (evaluation API)", "appended (evaluation.completed)", "consumed + stored (registry)",
              "readable (registry API: pool entry)"]
    rows: list[list[float]] = []
    for uscc in usccs:
        rep, done = first.get((uscc, REPORTED)), first.get((uscc, COMPLETED))
        if rep is None or done is None or rep[0] not in inbox_eval or done[0] not in inbox_reg:
            continue
        t0 = sent[uscc]
        rows.append([(t - t0) * 1000 for t in (stored[uscc], rep[1], inbox_eval[rep[0]], eval_readable[uscc],
                                               done[1], inbox_reg[done[0]], reg_readable[uscc])])
    print(f"{len(rows)} of {changes} changes traced (the rest lack a broker record or inbox row)")
    if not rows:
        return
    print(f"{'from PUT sent to':<40}{'p50':>8}{'p95':>8}{'p99':>8}   {'hop p50':>8}{'hop p95':>8}  ms")
    for i, name in enumerate(points):
        cumulative = [r[i] for r in rows]
        hop = [r[i] - (r[i - 1] if i else 0.0) for r in rows]
        print(f"{name:<40}{pct(cumulative, 50):>8.1f}{pct(cumulative, 95):>8.1f}{pct(cumulative, 99):>8.1f}   "
              f"{pct(hop, 50):>8.1f}{pct(hop, 95):>8.1f}")
    e95, r95 = pct([r[3] for r in rows], 95), pct([r[6] for r in rows], 95)
    met = {True: "met", False: "missed"}
    print(f"evaluation readable p95 {e95:.0f} ms (target ≤ {EVAL_TARGET_MS}: {met[e95 <= EVAL_TARGET_MS]}); "
          f"registry pool entry p95 {r95:.0f} ms (target ≤ {REGISTRY_TARGET_MS}: {met[r95 <= REGISTRY_TARGET_MS]}); "
          f"mean to registry {statistics.mean(r[6] for r in rows):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--fetch-wait", type=int, default=None, help="ZJTX_KAFKA_FETCH_MAX_WAIT_MS for the services")
    parser.add_argument("--demo-size", type=int, default=50)
    args, _ = parser.parse_known_args()
    extra = {} if args.fetch_wait is None else {"ZJTX_KAFKA_FETCH_MAX_WAIT_MS": str(args.fetch_wait)}
    stack = start_stack(args.demo_size, extra)
    try:
        wait = args.fetch_wait if args.fetch_wait is not None else "default"
        print(f"{args.changes} indicator changes, one at a time; services as processes (zjtx run, ports from "
              f"{stack.port_base}); consumer fetch wait {wait} ms")
        asyncio.run(measure(stack, args.changes))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()

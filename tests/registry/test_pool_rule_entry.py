"""Pool entry by rule result: evaluation.completed → county pool membership (basis rule_result) + pool.entered."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.app.pools import RULE_ACTOR, pool_moved
from services.registry.db.pools import enter_rule_results, get_or_create_pool
from services.registry.events.handlers import on_evaluation_completed, on_evaluation_completed_many
from shared.db import make_session_factory
from shared.events.envelope import CloudEvent
from tests.harness import make_producer, running_service, runtime_of, topic, wait_for
from tests.registry.conftest import scalar, scalar_rows
from tests.registry.helpers import LD, LIANDU, YH, YUHANG, register, uscc

SRDI_RS = "ZJ-SRDI-2025"


def completed(code: str, year: int, results: list[dict[str, Any]], region: str = YUHANG) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/zjtx/evaluation",
        type="zjtx.evaluation.evaluation.completed.v1",
        subject=code,
        regioncode=region,
        data={"uscc": code, "region_code": region, "year": year, "as_of": f"{year + 1}-03-31", "results": results},
    )


RESULTS = [
    {"ruleset_id": "ZJ-INNO-2025", "tier": "innovative", "eligible": False, "score": "55.00"},
    {"ruleset_id": SRDI_RS, "tier": "srdi", "eligible": True, "score": "78.50"},
    {"ruleset_id": "YH-SRDI-2025", "tier": "srdi", "eligible": True, "score": "81.00"},
    {"ruleset_id": "MIIT-LG-2023", "tier": "little_giant", "eligible": True, "score": None},  # no county pool
]

ENTERED = "SELECT count(*) FROM registry.outbox WHERE type = 'zjtx.registry.pool.entered.v1'"
MEMBERS = "SELECT count(*) FROM registry.pool_memberships"


async def county_pool(client: httpx.AsyncClient, region: str = YUHANG, headers: dict[str, str] = YH) -> list[Any]:
    r = await client.get(f"/api/v1/pools/county/{region}", headers=headers)
    assert r.status_code == 200, r.text
    members: list[Any] = r.json()["members"]
    return members


async def test_eligible_result_via_broker_enters_county_pool(clean: AsyncEngine) -> None:
    async with running_service("registry", consumer=True) as (app, client):
        code = (await register(client, 1))["uscc"]
        producer = await make_producer()
        try:

            async def send(ev: CloudEvent) -> None:
                await producer.send_and_wait(
                    topic("zjtx.evaluation.events"),
                    value=ev.kafka_value(),
                    key=code.encode(),
                    headers=ev.kafka_headers(),
                )

            first = completed(code, 2025, RESULTS)
            await send(first)
            await send(first)  # redelivery of the same event
            again = completed(code, 2025, RESULTS)  # a re-evaluation with the same outcome
            await send(again)

            async def consumed() -> bool:
                return bool(await scalar(clean, "SELECT count(*) FROM registry.inbox WHERE event_id = :e", e=again.id))

            await wait_for(consumed, timeout=30, what="evaluation.completed consumed")
        finally:
            await producer.stop()
        members = await county_pool(client)
        assert [(m["uscc"], m["track"], m["year"], m["basis"]) for m in members] == [
            (code, "srdi", 2025, "rule_result")
        ]
        assert await scalar(clean, MEMBERS) == 1
        assert await scalar(clean, "SELECT reason FROM registry.pool_memberships") == SRDI_RS
        assert await scalar(clean, ENTERED) == 1
        payload = await scalar(clean, ENTERED.replace("count(*)", "payload"))
        assert payload["reason"] == SRDI_RS and payload["track"] == "srdi" and payload["level"] == "county"
        assert payload["pool_region"] == YUHANG and payload["year"] == 2025 and payload["uscc"] == code
        ent = (await client.get(f"/api/v1/enterprises/{code}", headers=YH)).json()
        assert [(p["level"], p["track"], p["basis"]) for p in ent["pools"]] == [("county", "srdi", "rule_result")]
        listed = (await client.get("/api/v1/enterprises", params={"pool": "county:srdi"}, headers=YH)).json()
        assert [e["uscc"] for e in listed["items"]] == [code]
        runtime = runtime_of(app)
        assert runtime.consumer is not None and runtime.consumer.dead_lettered == 0
        assert runtime.consumer.duplicates == 1


async def test_rule_entry_respects_existing_membership_and_official_exit(
    client: httpx.AsyncClient, clean: AsyncEngine
) -> None:
    factory = make_session_factory(clean)

    async def deliver(ev: CloudEvent) -> None:
        async with factory() as s, s.begin():
            await on_evaluation_completed(s, ev)

    nominated = (await register(client, 2))["uscc"]
    exited = (await register(client, 3))["uscc"]
    liandu = (await register(client, 4, LIANDU))["uscc"]
    # already nominated into the pool: no second membership, no event
    r = await client.post(
        f"/api/v1/pools/county/{YUHANG}/members",
        json={"uscc": nominated, "track": "srdi", "year": 2024, "basis": "nomination", "reason": "街道推荐"},
        headers=YH,
    )
    assert r.status_code == 201, r.text
    await deliver(completed(nominated, 2025, RESULTS))
    assert await scalar(clean, ENTERED) == 1  # the nomination's

    # entered by rule, exited by an official for the year: a later result of that year does not undo the exit
    await deliver(completed(exited, 2025, RESULTS))
    r = await client.post(
        f"/api/v1/pools/county/{YUHANG}/members/{exited}/exit", json={"track": "srdi", "reason": "经营异常"}, headers=YH
    )
    assert r.status_code == 200, r.text
    await deliver(completed(exited, 2025, RESULTS))
    await deliver(completed(exited, 2024, RESULTS))  # an older year's result neither
    assert await scalar(clean, "SELECT count(*) FROM registry.pool_memberships WHERE uscc = :u", u=exited) == 1
    assert await scalar(clean, ENTERED) == 2
    # never exits anybody: a not-eligible result leaves the membership alone
    await deliver(completed(nominated, 2025, [{**RESULTS[1], "eligible": False}]))
    assert await scalar(clean, "SELECT count(*) FROM registry.pool_memberships WHERE exited_on IS NULL") == 1

    # an eligible innovative result: the enterprise's own county (莲都) pool for that track
    await deliver(
        completed(liandu, 2025, [{"ruleset_id": "ZJ-INNO-2025", "tier": "innovative", "eligible": True}], LIANDU)
    )
    assert [(m["uscc"], m["track"]) for m in await county_pool(client, LIANDU, LD)] == [(liandu, "innovative")]

    # unknown or deregistered enterprises are skipped (no error, no dead letter)
    await deliver(completed(uscc(999), 2025, RESULTS))
    r = await client.post(f"/api/v1/enterprises/{liandu}/deregister", json={"reason": "迁出"}, headers=LD)
    assert r.status_code == 200, r.text
    await deliver(completed(liandu, 2026, RESULTS, LIANDU))
    assert await scalar(clean, ENTERED) == 3
    assert await scalar(clean, MEMBERS) == 3


async def test_a_batch_of_results_is_decided_in_order_like_one_by_one(
    client: httpx.AsyncClient, clean: AsyncEngine
) -> None:
    """The set-based handler (a re-evaluation job's events arrive by the thousand) decides each event after the
    ones before it in the batch: a second eligible result of the same enterprise and year adds nothing, an older
    year's result after an official's exit adds nothing, and each entry has its own event, audit row and
    correlation (the event that caused it)."""
    factory = make_session_factory(clean)
    a, b, c, d = [(await register(client, n))["uscc"] for n in (11, 12, 13, 14)]
    # c was entered by rule for 2025 and exited by an official
    async with factory() as s, s.begin():
        await on_evaluation_completed_many(s, [completed(c, 2025, RESULTS)])
    r = await client.post(
        f"/api/v1/pools/county/{YUHANG}/members/{c}/exit", json={"track": "srdi", "reason": "经营异常"}, headers=YH
    )
    assert r.status_code == 200, r.text
    innovative = [{"ruleset_id": "ZJ-INNO-2025", "tier": "innovative", "eligible": True}]
    batch = [
        completed(a, 2025, RESULTS),
        completed(a, 2025, RESULTS),  # the same outcome again: already in
        completed(b, 2025, [{**RESULTS[1], "eligible": False}]),  # not eligible: nothing
        completed(c, 2024, RESULTS),  # older than the official's exit: nothing
        completed(c, 2025, innovative),  # another track: enters the innovative pool
        completed(uscc(998), 2025, RESULTS),  # unknown enterprise: skipped
        completed(d, 2025, RESULTS + innovative),  # two tracks at once
    ]
    async with factory() as s, s.begin():
        await on_evaluation_completed_many(s, batch)
    rows = await scalar_rows(
        clean,
        "SELECT m.uscc, p.track, m.year, m.reason FROM registry.pool_memberships m "
        "JOIN registry.pools p ON p.id = m.pool_id WHERE m.exited_on IS NULL ORDER BY m.uscc, p.track",
    )
    assert rows == [
        (a, "srdi", 2025, SRDI_RS),
        (c, "innovative", 2025, "ZJ-INNO-2025"),
        (d, "innovative", 2025, "ZJ-INNO-2025"),
        (d, "srdi", 2025, SRDI_RS),
    ]
    assert await scalar(clean, ENTERED) == 5  # c's first entry + the four above
    caused = await scalar_rows(
        clean,
        "SELECT o.payload->>'uscc', o.payload->>'track', o.headers->>'ce_correlationid', a.event_id "
        "FROM registry.outbox o JOIN registry.audit_log a ON a.action = 'pool.enter' "
        "AND a.after->>'uscc' = o.payload->>'uscc' AND a.after->>'reason' = o.payload->>'reason' "
        "WHERE o.type = 'zjtx.registry.pool.entered.v1' AND o.payload->>'uscc' <> :c ORDER BY 1, 2",
        c=c,
    )
    by_id = {e.id: e for e in batch}
    expected = [(a, "srdi", batch[0].id), (d, "innovative", batch[6].id), (d, "srdi", batch[6].id)]
    assert [(u, t, corr) for u, t, corr, _ in caused] == expected
    assert all(corr == audit_event and corr in by_id for _, _, corr, audit_event in caused)


async def test_batches_through_the_consumer_isolate_a_poison_event(clean: AsyncEngine) -> None:
    """Published before the consumer starts, the events arrive as one batch: the batch handler applies them, a
    malformed one makes the batch fall back to one event at a time, and only that one is dead-lettered."""
    producer = await make_producer()
    async with running_service("registry") as (_, client):
        codes = [(await register(client, n))["uscc"] for n in range(20, 30)]
    events = [completed(code, 2025, RESULTS) for code in codes]
    good = completed(codes[0], 2025, RESULTS)
    poison = good.model_copy(update={"id": str(uuid.uuid4()), "data": {**good.data, "year": "not a year"}})
    events.insert(5, poison)
    try:
        for e in events:
            await producer.send(topic("zjtx.evaluation.events"), value=e.kafka_value(), key=e.subject.encode(),
                                headers=e.kafka_headers(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    async with running_service("registry", consumer=True) as (app, _):
        runtime = runtime_of(app)

        async def drained() -> bool:
            return runtime.consumer is not None and runtime.consumer.processed + runtime.consumer.dead_lettered >= 11

        await wait_for(drained, timeout=30, what="batch consumed")
        assert runtime.consumer is not None and runtime.consumer.dead_lettered == 1
    assert await scalar(clean, MEMBERS) == 10
    assert await scalar(clean, ENTERED) == 10
    assert await scalar(clean, "SELECT count(*) FROM registry.inbox") == 11


async def test_entry_skips_a_membership_a_nomination_made_meanwhile(
    client: httpx.AsyncClient, clean: AsyncEngine
) -> None:
    """The entries go in by a plain insert in a savepoint; an active membership made after the handler read the
    pool's memberships (a concurrent nomination) refuses it, and the conflict-skipping insert then enters the
    others, in the same transaction."""
    factory = make_session_factory(clean)
    nominated, other = [(await register(client, n))["uscc"] for n in (21, 22)]
    async with factory() as s, s.begin():
        pool = await get_or_create_pool(s, "county", YUHANG, "srdi")
        await s.execute(text(
            "INSERT INTO registry.pool_memberships (pool_id, uscc, year, basis, entered_on, entered_by) "
            "VALUES (:p, :u, 2025, 'nomination', CURRENT_DATE, 'county-official')"), {"p": pool.id, "u": nominated})
        rows = await enter_rule_results(s, ([pool.id, pool.id], [nominated, other], [2025, 2025], [SRDI_RS, SRDI_RS],
                                date(2026, 3, 31), RULE_ACTOR))
        assert [(pool_id, member) for _, pool_id, member in rows] == [(pool.id, other)]
    members = await scalar_rows(
        clean, "SELECT uscc, basis FROM registry.pool_memberships WHERE exited_on IS NULL ORDER BY uscc")
    assert members == sorted([(nominated, "nomination"), (other, "rule_result")])


def test_pool_moved_payload_is_the_contract_models_json() -> None:
    """``pool_moved`` builds the payload directly; it is exactly what the ``PoolMoved`` model dumps."""
    from services.registry.db.models import Pool
    from services.registry.events.contracts import PoolMoved

    pool = Pool(id=7, name="余杭区专精特新培育库", level="county", region_code=YUHANG, track="srdi")
    for reason in (SRDI_RS, None):
        payload = pool_moved(uscc(5), YUHANG, pool, 2025, reason)
        assert PoolMoved.model_validate(payload).model_dump(mode="json") == payload
        assert list(payload) == list(PoolMoved.model_fields)

"""The archive (through the broker: every topic, each event once, month partitions) and the jurisdiction feed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.monitor.app.retention import apply_retention
from shared.events.catalog import EVENT_TYPES, topic_of
from tests.harness import auth, make_producer, running_service, runtime_of, topic, wait_for
from tests.monitor import programme as p
from tests.monitor.conftest import apply, event, serving

AGENCY_LISHUI = auth("agency", p.LISHUI, sub="agency:lishui-amr")
AGENCY_PROVINCE = auth("agency", "330000", sub="agency:zj")


async def _count(engine: AsyncEngine, sql: str, **params: object) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar() or 0)


async def test_every_topic_archived_once_into_month_partitions(clean: AsyncEngine) -> None:
    # the types the catalog declares (targets and budgets are not published yet: a broker would dead-letter them)
    sent = [e for e in p.events() if e.type in EVENT_TYPES]
    duplicate = sent[0]
    producer = await make_producer()
    try:
        async with running_service("monitor", consumer=True) as (_, client):
            for ev in [*sent, duplicate]:  # a redelivery of the first event
                await producer.send_and_wait(topic(topic_of(ev.type.split(".")[1])), key=ev.subject.encode(),
                                             value=ev.kafka_value(), headers=ev.kafka_headers())
            await wait_for(lambda: _count_ok(clean, len(sent)), timeout=30, what="events archived")
            await asyncio.sleep(0.5)
            assert await _count(clean, "SELECT count(*) FROM monitor.events") == len(sent)
            assert await _count(clean, "SELECT count(DISTINCT event_id) FROM monitor.events") == len(sent)
            # one partition per month of event time, in monitor_archive
            months = {(e.time.year, e.time.month) for e in sent}
            names = await _count(clean, "SELECT count(*) FROM monitor.events WHERE tableoid::regclass::text "
                                        "LIKE 'monitor_archive.events_%'")
            assert names == len(sent)
            parts = await _count(clean, "SELECT count(DISTINCT tableoid) FROM monitor.events")
            assert parts == len(months)
            # the read models were fed on the way
            r = await client.get("/api/v1/monitor/attainment", params={"year": p.YEAR}, headers=AGENCY_LISHUI)
            assert next(x for x in r.json()["total"] if x["tier"] == "srdi")["actual"] == 2
    finally:
        await producer.stop()


async def _count_ok(engine: AsyncEngine, n: int) -> bool:
    return await _count(engine, "SELECT count(*) FROM monitor.events") >= n


async def test_feed_is_filtered_by_jurisdiction_and_paged(clean: AsyncEngine) -> None:
    sent = p.events()
    await apply(clean, sent)
    async with running_service("monitor") as (_, client):
        async def all_of(headers: dict[str, str], **params: object) -> list[dict]:
            out, after = [], 0
            while True:
                page = (await client.get("/api/v1/feed", params={"after": after, "limit": 7, **params},
                                         headers=headers)).json()
                if not page["events"]:
                    return out
                cursors = [e["cursor"] for e in page["events"]]
                assert cursors == sorted(cursors) and cursors[0] > after
                out += page["events"]
                after = page["next_cursor"]

        lishui = await all_of(AGENCY_LISHUI)
        expected = [e.id for e in sent if (e.regioncode or "").startswith("3311")]
        assert [e["id"] for e in lishui] == expected and len(expected) > 20
        assert all(e["regioncode"].startswith("3311") for e in lishui)
        assert not any(e["subject"] in p.C.values() for e in lishui)  # none of 杭州's enterprises
        everything = await all_of(AGENCY_PROVINCE)
        assert len(everything) == len(sent)
        assert {e["regioncode"] for e in everything} >= {p.YUHANG, p.LIANDU}
        yuhang = await all_of(auth("county_official", p.YUHANG))
        assert {e["subject"] for e in yuhang} == set(p.C.values())
        # narrowed by type and region inside the jurisdiction
        recognised = await all_of(AGENCY_LISHUI, types="zjtx.evaluation.tier.recognised.v1", region=p.LIANDU)
        assert [e["data"]["recognition_id"] for e in recognised] == ["r-a4", "r-a6"]
        # outside it: 404; a role that may not read the feed: 403; no token: 401
        r = await client.get("/api/v1/feed", params={"region": p.YUHANG}, headers=AGENCY_LISHUI)
        assert r.status_code == 404
        r = await client.get("/api/v1/feed", headers=auth("enterprise", p.LIANDU, uscc=p.A[1]))
        assert r.status_code == 403
        assert (await client.get("/api/v1/feed")).status_code == 401
        r = await client.get("/api/v1/feed", params={"after": -1}, headers=AGENCY_LISHUI)
        assert r.status_code == 422
        r = await client.get("/api/v1/feed", params={"types": "zjtx.registry.nothing.v1"}, headers=AGENCY_LISHUI)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "types" and "未知事件类型" in r.text


async def test_long_poll_waits_for_a_new_event_in_the_jurisdiction(clean: AsyncEngine) -> None:
    await apply(clean, p.events()[:3])
    async with running_service("monitor") as (_, client):
        head = (await client.get("/api/v1/feed", params={"limit": 1000}, headers=AGENCY_PROVINCE)).json()
        after = head["next_cursor"]
        newcomer = event("zjtx.registry.enterprise.updated.v1", p.A[1], p.LIANDU,
                         {"uscc": p.A[1], "name": "新名称有限公司", "region_code": p.LIANDU})
        hz = event("zjtx.registry.enterprise.updated.v1", p.C[1], p.YUHANG,
                   {"uscc": p.C[1], "name": "杭州改名有限公司", "region_code": p.YUHANG})

        async def later() -> None:
            await asyncio.sleep(0.6)
            await apply(clean, [hz, newcomer])

        started = asyncio.get_running_loop().time()
        task = asyncio.create_task(later())
        r = await client.get("/api/v1/feed", params={"after": after, "wait": 10}, headers=AGENCY_LISHUI)
        await task
        waited = asyncio.get_running_loop().time() - started
        assert [e["id"] for e in r.json()["events"]] == [newcomer.id]
        assert 0.5 < waited < 8
        # nothing new: the long-poll answers empty when its time is up
        r = await client.get("/api/v1/feed", params={"after": r.json()["next_cursor"], "wait": 0.3},
                             headers=AGENCY_LISHUI)
        assert r.json()["events"] == []



async def test_stream_sends_jurisdiction_events_as_server_sent_events(clean: AsyncEngine) -> None:
    """Over a real HTTP server (the in-process transport buffers whole responses): the 丽水 events in order, each
    with its cursor as the SSE id, none of 杭州's; new events follow."""
    sent = p.events()[:12]
    await apply(clean, sent)
    lishui = [e for e in sent if (e.regioncode or "").startswith("3311")]
    newcomer = event("zjtx.registry.enterprise.updated.v1", p.A[1], p.LIANDU, {"uscc": p.A[1], "name": "新名称"})
    async with (
        serving("monitor") as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        client.stream("GET", "/api/v1/feed/stream", headers=AGENCY_LISHUI) as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines: list[str] = []
        applied = False
        async for line in stream.aiter_lines():
            lines.append(line)
            if not applied and sum(x.startswith("data: ") for x in lines) == len(lishui):
                await apply(clean, [newcomer])  # a follower gets what comes next
                applied = True
            if newcomer.id in line:
                break
    ids = [int(x[4:]) for x in lines if x.startswith("id: ")]
    assert ids == sorted(ids) and len(ids) == len(lishui) + 1
    data = [x for x in lines if x.startswith("data: ")]
    assert [e.id for e in lishui] == [orjson.loads(x[6:])["id"] for x in data[:-1]]
    assert not any(p.YUHANG in x for x in data)


async def test_retention_drops_whole_old_months_only(clean: AsyncEngine) -> None:
    old = event("zjtx.registry.enterprise.updated.v1", p.A[1], p.LIANDU, {"uscc": p.A[1]},
                time=datetime(2019, 3, 15, tzinfo=UTC))
    recent = event("zjtx.registry.enterprise.updated.v1", p.A[2], p.LIANDU, {"uscc": p.A[2]},
                   time=datetime(2026, 11, 20, tzinfo=UTC))
    await apply(clean, [old, recent])
    async with running_service("monitor") as (app, _):
        runtime = runtime_of(app)
        assert await apply_retention(runtime, None) == []  # default: kept
        dropped = await apply_retention(runtime, 365, now=datetime(2026, 12, 5, tzinfo=UTC))
    assert "events_201903" in dropped and "events_202611" not in dropped
    ids = await _count(clean, "SELECT count(*) FROM monitor.events WHERE event_id = :i", i=recent.id)
    assert ids == 1
    assert await _count(clean, "SELECT count(*) FROM monitor.events WHERE event_id = :i", i=old.id) == 0


async def test_long_poll_is_woken_by_the_archive_commit(clean: AsyncEngine) -> None:
    """With the feed listener running (LISTEN on the archive's channel), a waiting follower answers as soon as the
    events are committed instead of at its next look (every second without a listener)."""
    from services.monitor.app.feed import POLL_INTERVAL, signal_of

    await apply(clean, p.events()[:3])
    async with running_service("monitor", consumer=True) as (app, client):
        signal = signal_of(runtime_of(app))

        async def live() -> bool:
            return signal.live

        await wait_for(live, timeout=15, what="feed listener")
        head = (await client.get("/api/v1/feed", params={"limit": 1000}, headers=AGENCY_LISHUI)).json()
        newcomer = event("zjtx.registry.enterprise.updated.v1", p.A[3], p.LIANDU, {"uscc": p.A[3]})
        loop = asyncio.get_running_loop()
        committed: list[float] = []

        async def later() -> None:
            await asyncio.sleep(0.3)
            await apply(clean, [newcomer])
            committed.append(loop.time())

        task = asyncio.create_task(later())
        r = await client.get("/api/v1/feed", params={"after": head["next_cursor"], "wait": 10},
                             headers=AGENCY_LISHUI)
        answered = loop.time()
        await task
        assert [e["id"] for e in r.json()["events"]] == [newcomer.id]
        assert answered - committed[0] < POLL_INTERVAL / 2

"""The worked examples run against the test broker and the monitor's feed: the producer's command line sends
its events; the consumer follows the broker (group agency-<name>, from the beginning) or GET /api/v1/feed with a
丽水 agency's token, and prints 丽水's events only."""

from __future__ import annotations

import asyncio
import json

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from examples import agency_consumer, agency_producer
from shared.events import agency
from tests.agency.conftest import one
from tests.harness import engine_for, running_service, token, truncate_schema, unique_group, wait_for
from tests.harness import topic as harness_topic


def lishui_uscc() -> str:
    from services.registry.domain.uscc import make_uscc

    return make_uscc("331102", "MA2H7Y1K")


async def test_producer_cli_and_consumer_over_broker_and_feed(
    engines: dict[str, AsyncEngine], bootstrap: str
) -> None:
    topic = harness_topic(agency.TOPIC)
    lishui = lishui_uscc()
    # the command line: one type, then the whole set for a 丽水 enterprise
    assert await asyncio.to_thread(agency_producer.main, [bootstrap, "--topic", topic, "--type", "credit.listed"]) == 0
    sent = agency_producer.examples(lishui, [agency.RENAMED, agency.TAX_REPORTED])
    sent = [(t, {**p, "region_code": "331102", "agency": "丽水市莲都区市场监督管理局"}) for t, p in sent]
    await agency_producer.produce(bootstrap, sent, topic=topic, source="/agency/ls-scjg")

    # broker: everything from the beginning; with --region only 丽水's
    everything: list[str] = []
    assert await agency_consumer.follow_broker(bootstrap, unique_group("all"), topics=[topic], idle_seconds=3,
                                               out=everything.append) == 3
    # (one enterprise's events in order; two enterprises may sit in different partitions)
    assert sorted(line.split()[1] for line in everything) == sorted(
        [agency.CREDIT_LISTED, agency.RENAMED, agency.TAX_REPORTED])
    mine: list[str] = []
    assert await agency_consumer.follow_broker(bootstrap, unique_group("ls"), topics=[topic], region="331100",
                                               idle_seconds=3, out=mine.append) == 2
    assert all(line.split()[2] == lishui and line.split()[3] == "331102" for line in mine)
    assert json.loads(mine[1].split(" ", 4)[4])["operating_revenue"] == "68500000.00"

    # the monitor's HTTP feed with a 丽水 agency token: 丽水's events, none of 杭州's
    mon = engine_for("monitor")
    await truncate_schema(mon, "monitor")
    try:
        async with running_service("monitor", consumer=True) as (app, _):
            async def archived() -> bool:
                return await one(mon, "SELECT count(*) FROM monitor.events") >= 3

            await wait_for(archived, timeout=30, what="archived")
            lines: list[str] = []
            got = await agency_consumer.follow_feed(
                "http://monitor", token("agency", "331100", sub="agency-331100"), wait=0, idle_polls=1,
                out=lines.append, transport=httpx.ASGITransport(app=app))
            assert got == 2 and {line.split()[2] for line in lines} == {lishui}
            province: list[str] = []
            assert await agency_consumer.follow_feed(
                "http://monitor", token("agency", "330000", sub="agency-330000"), wait=0, idle_polls=1,
                out=province.append, transport=httpx.ASGITransport(app=app)) == 3
    finally:
        await mon.dispose()

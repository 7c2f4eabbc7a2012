"""``zjtx demo``: load every service's demo data (in the order they declare) and print tokens to try it with.

Run by the dev stack in a child process that exits, so the supervising process keeps no application code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.auth import issue_token
from shared.backbone import Backbone
from shared.context import correlation_id_var
from shared.services import DemoPrincipal, descriptors, load_attribute
from shared.settings import Settings

# Two officials per jurisdiction (maker-checker: the one who approves is not the one who created).
ROLE_TOKENS: list[DemoPrincipal] = [
    DemoPrincipal("province_official", "330000", "省经信厅 经办人 (province, maker)", sub="prov-330000-a"),
    DemoPrincipal("province_official", "330000", "省经信厅 复核人 (province, checker)", sub="prov-330000-b"),
    DemoPrincipal("city_official", "330100", "杭州市 经办人 (city, maker)", sub="city-330100-a"),
    DemoPrincipal("city_official", "330100", "杭州市 复核人 (city, checker)", sub="city-330100-b"),
    DemoPrincipal("city_official", "331100", "丽水市 经办人 (city, maker)", sub="city-331100-a"),
    DemoPrincipal("city_official", "331100", "丽水市 复核人 (city, checker)", sub="city-331100-b"),
    DemoPrincipal("county_official", "330110", "余杭区 经办人 (county, maker)", sub="county-330110-a"),
    DemoPrincipal("county_official", "330110", "余杭区 复核人 (county, checker)", sub="county-330110-b"),
    DemoPrincipal("county_official", "330109", "萧山区 经办人 (county, maker)", sub="county-330109-a"),
    DemoPrincipal("county_official", "330109", "萧山区 复核人 (county, checker)", sub="county-330109-b"),
    DemoPrincipal("agency", "330000", "省级部门 (agency)", sub="agency-330000"),
    DemoPrincipal("agency", "331100", "丽水市市场监管局 (agency, city)", sub="agency-331100"),
    DemoPrincipal("admin", "330000", "运维 (admin)", sub="admin-1"),
]


# The correlation id of the events a demo loader writes (and, through the consumers, of every event they cause):
# notification puts notices of such events in the inbox only, so a demo load sends no SMS or e-mail.
DEMO_CORRELATION = "zjtx-demo"


@contextmanager
def demo_events(what: str) -> Iterator[None]:
    """Events written inside carry the demo correlation id (``zjtx-demo:<what>``)."""
    token = correlation_id_var.set(f"{DEMO_CORRELATION}:{what}")
    try:
        yield
    finally:
        correlation_id_var.reset(token)


def is_demo_correlation(correlation_id: str | None) -> bool:
    return correlation_id is not None and correlation_id.startswith(DEMO_CORRELATION + ":")


async def wait_until(
    sf: async_sessionmaker[AsyncSession], count: Select[Any], at_least: int, what: str,
    wait_seconds: float = 120.0, poll: float = 0.1, steady: float = 0.0,
) -> int:
    """Poll ``count`` (a ``SELECT count(*)`` in the caller's own schema) until it reaches ``at_least`` (and then, with
    ``steady``, until it has not changed for that long): a demo step waiting for what an earlier step's events cause
    in its service (e.g. the evaluations of the reports registry's demo published). Warns and carries on after
    ``wait_seconds``; returns the last count."""
    deadline = time.monotonic() + wait_seconds
    last, since = -1, time.monotonic()
    while True:
        async with sf() as session:
            have = int((await session.execute(count)).scalar_one())
        if have != last:
            last, since = have, time.monotonic()
        if have >= at_least and time.monotonic() - since >= steady:
            return have
        if time.monotonic() > deadline:
            _say(f"demo: only {have} of {at_least} {what} after {wait_seconds:.0f}s; carrying on")
            return have
        await asyncio.sleep(poll)


async def wait_for_events(
    settings: Settings, backbone: Backbone, event_type: str, at_least: int, wait_seconds: float = 120.0,
    steady: float = 0.0,
) -> int:
    """Wait until the service of ``backbone`` has applied ``at_least`` events of ``event_type`` (its inbox)."""
    from shared.db import create_engine, make_session_factory

    inbox = backbone.inbox
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        return await wait_until(make_session_factory(engine), select(func.count()).select_from(inbox).where(
            inbox.c.event_type == event_type), at_least, f"{event_type} applied by {backbone.service}", wait_seconds,
            steady=steady)
    finally:
        await engine.dispose()


def _say(msg: str) -> None:
    print(f"[zjtx] {msg}", flush=True)


def load_all(size: int) -> None:
    """Every service's demo loader, lowest ``demo_order`` first (each is idempotent)."""

    steps: list[tuple[int, str, str]] = []
    for d in descriptors():
        if d.demo is not None:
            steps.append((d.demo_order, d.name, d.demo))
        steps += [(order, d.name, ref) for order, ref in d.demo_steps]
    steps.sort(key=lambda step: step[0])

    async def load() -> None:
        begun = time.perf_counter()
        for _, name, ref in steps:
            started = time.perf_counter()
            await load_attribute(ref)(Settings(service=name), size)
            what = ref.partition(":")[2]
            _say(f"demo data for {name} loaded{'' if what == 'load_demo' else f' ({what})'}"
                 f" ({time.perf_counter() - started:.1f}s)")
        _say(f"demo of {size} enterprises loaded in {time.perf_counter() - begun:.1f}s")

    asyncio.run(load())


def principals() -> list[DemoPrincipal]:
    found = list(ROLE_TOKENS)
    for d in descriptors():
        if d.demo_principals is not None:
            found += load_attribute(d.demo_principals)()
    return found


def print_tokens(ttl: int = 12 * 3600) -> None:
    settings = Settings(service=descriptors()[0].name)
    _say(f"tokens (valid {ttl // 3600} h) — use as 'Authorization: Bearer <token>':")
    for p in principals():
        tok = issue_token(settings, role=p.role, region=p.region, uscc=p.uscc, sub=p.sub, ttl=ttl)
        who = f"{p.role}@{p.region}" + (f" {p.uscc}" if p.uscc else "") + (f" sub={p.sub}" if p.sub else "")
        print(f"  {p.label}\n    {who}\n    {tok}", flush=True)
    print("  more: .venv/bin/zjtx token --role enterprise --region 330110 --uscc <USCC> [--sub <who>]", flush=True)

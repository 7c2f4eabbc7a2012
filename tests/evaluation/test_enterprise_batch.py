"""The set-based handler of registry's enterprise events (``on_enterprise_many``, used by the consumer for a run of
them, e.g. a demo load or an import) leaves the read model as the per-event handler does: registrations, updates,
a stale version, a deregistration and several events of one enterprise in one run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.db.models import Enterprise
from services.evaluation.events.handlers import on_enterprise, on_enterprise_many
from shared.events.envelope import CloudEvent
from tests.evaluation.conftest import new_uscc

REGISTERED = "zjtx.registry.enterprise.registered.v1"
UPDATED = "zjtx.registry.enterprise.updated.v1"


def _event(kind: str, uscc: str, version: int, **extra: Any) -> CloudEvent:
    data = {"uscc": uscc, "name": f"企业{version}", "region_code": "330110", "industry_code": "3562",
            "is_manufacturing": True, "founded_on": "2012-05-01", "scale": "small", "status": "active",
            "focus": {}, "liaison": None, "version": version, **extra}
    return CloudEvent(id=str(uuid.uuid4()), source="/zjtx/registry", type=kind, subject=uscc, regioncode="330110",
                      time=datetime.now(UTC), data=data)


def _story(a: str, b: str, c: str) -> list[CloudEvent]:
    return [
        _event(REGISTERED, a, 1), _event(REGISTERED, b, 1), _event(REGISTERED, c, 1),
        _event(UPDATED, a, 3, name="新名称"), _event(UPDATED, a, 2, name="过时的名称"),  # stale: ignored
        _event(UPDATED, b, 2, status="deregistered"), _event(UPDATED, b, 3, scale="medium"),  # stays deregistered
        _event(UPDATED, c, 2, region_code="330109"),
    ]


def _rename(events: list[CloudEvent], names: dict[str, str]) -> list[CloudEvent]:
    return [CloudEvent(id=str(uuid.uuid4()), source=e.source, type=e.type, subject=names[e.subject],
                       regioncode=e.regioncode, time=e.time, data={**e.data, "uscc": names[e.subject]})
            for e in events]


async def _rows(sf: async_sessionmaker[AsyncSession], usccs: list[str]) -> list[tuple[Any, ...]]:
    async with sf() as s:
        found = {e.uscc: e for e in (await s.execute(select(Enterprise).where(Enterprise.uscc.in_(usccs)))).scalars()}
    return [(found[u].name, found[u].region_code, found[u].scale, found[u].status, found[u].version) for u in usccs]


async def test_batch_equals_one_by_one(sf: async_sessionmaker[AsyncSession]) -> None:
    one = [new_uscc() for _ in range(3)]
    many = [new_uscc() for _ in range(3)]
    story = _story(*one)
    async with sf() as s, s.begin():
        for e in story:
            await on_enterprise(s, e)
    async with sf() as s, s.begin():
        await on_enterprise_many(s, _rename(story, dict(zip(one, many, strict=True))))
    assert await _rows(sf, many) == await _rows(sf, one)
    assert (await _rows(sf, one))[0][0] == "新名称" and (await _rows(sf, one))[1][3] == "deregistered"

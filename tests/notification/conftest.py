"""Fixtures of the notification tests: real local SMS (HTTP) and SMTP servers, a clean schema per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.notification.fake_providers import Mailbox, running_providers
from shared.db import make_session_factory
from shared.events.envelope import CloudEvent
from shared.infra import free_port
from tests.harness import engine_for, truncate_schema


@pytest.fixture(scope="session")
async def providers() -> AsyncIterator[tuple[Mailbox, dict[str, Any]]]:
    sms_port, smtp_port = free_port(), free_port()
    async with running_providers(sms_port, smtp_port) as box:
        yield box, {"sms_gateway_url": f"http://127.0.0.1:{sms_port}", "smtp_host": "127.0.0.1",
                    "smtp_port": smtp_port}


@pytest.fixture(scope="session")
async def engine() -> AsyncIterator[AsyncEngine]:
    eng = engine_for("notification")
    yield eng
    await eng.dispose()


@pytest.fixture
async def clean(engine: AsyncEngine, providers: tuple[Mailbox, dict[str, Any]]) -> AsyncIterator[Mailbox]:
    await truncate_schema(engine, "notification")
    providers[0].clear()
    yield providers[0]


@pytest.fixture
def sf(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_session_factory(engine)


def uscc(region: str = "330110") -> str:
    return "91" + region + uuid.uuid4().hex[:10].upper()


def event(
    type_: str, subject: str, data: dict[str, Any], region: str | None = None, eid: str | None = None
) -> CloudEvent:
    service = type_.split(".")[1]
    return CloudEvent(id=eid or str(uuid.uuid4()), source=f"/zjtx/{service}", type=type_, subject=subject,
                      time=datetime.now(UTC), regioncode=region, data=data)


def recognised(u: str, region: str, tier: str, rid: str | None = None, valid_to: str = "2029-12-31",
               level: str = "province") -> CloudEvent:
    return event("zjtx.evaluation.tier.recognised.v1", u, {
        "recognition_id": rid or f"rec-{uuid.uuid4().hex[:10]}", "uscc": u, "region_code": region, "tier": tier,
        "level": level, "ruleset_id": "rs-1", "batch_year": 2026, "announced_on": "2026-11-01",
        "valid_from": "2026-11-01", "valid_to": valid_to, "renewal": False, "migrated_in": False,
    }, region)


def registered(u: str, region: str, name: str, mobile: str | None, email: str | None, version: int = 1) -> CloudEvent:
    liaison = {"name": "联络员" + name[:2], "mobile": mobile, "email": email} if mobile or email else None
    return event("zjtx.registry.enterprise.registered.v1", u, {
        "uscc": u, "name": name, "region_code": region, "industry_code": "C39", "is_manufacturing": True,
        "founded_on": "2015-03-01", "scale": "small", "status": "active", "focus": {}, "liaison": liaison,
        "version": version,
    }, region)


async def apply(sf: async_sessionmaker[AsyncSession], ev: CloudEvent) -> None:
    """Run the handler for ``ev`` in a transaction, as the consumer would (unit-level path)."""
    from services.notification.events.handlers import HANDLERS

    async with sf() as session, session.begin():
        await HANDLERS[ev.type](session, ev)

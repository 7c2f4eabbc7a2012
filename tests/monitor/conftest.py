"""Monitor test fixtures: a clean monitor schema, and events built as the other services publish them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.monitor.app.projections import record
from shared.db import make_session_factory
from shared.events.envelope import CloudEvent
from tests.harness import engine_for, truncate_schema


@pytest.fixture(scope="session")
async def mon_engine() -> AsyncIterator[AsyncEngine]:
    engine = engine_for("monitor")
    yield engine
    await engine.dispose()


@pytest.fixture
async def clean(mon_engine: AsyncEngine) -> AsyncEngine:
    await truncate_schema(mon_engine, "monitor")
    return mon_engine


def event(type_: str, uscc: str, region: str | None, data: dict[str, Any], *, time: datetime | None = None,
          event_id: str | None = None) -> CloudEvent:
    """An event as its producer publishes it (source /zjtx/<service>, key and subject the USCC)."""
    return CloudEvent(id=event_id or str(uuid.uuid4()), source=f"/zjtx/{type_.split('.')[1]}", type=type_,
                      subject=uscc, time=time or datetime.now(UTC), regioncode=region, data=data)


async def apply(engine: AsyncEngine, events: Sequence[CloudEvent]) -> None:
    """Apply events through the monitor's handler path (archive + read models) in one transaction."""
    factory = make_session_factory(engine)
    async with factory() as session, session.begin():
        await record(session, list(events))

"""Monitor test fixtures: a clean monitor schema, and events built as the other services publish them."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from services.monitor.app.projections import record
from shared.db import make_session_factory
from shared.events.envelope import CloudEvent
from tests.harness import engine_for, settings, truncate_schema, wait_for


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


@contextlib.asynccontextmanager
async def serving(service: str) -> AsyncIterator[str]:
    """The service behind a real uvicorn server on a free port; yields its base URL."""
    from services.monitor.main import build_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_app(settings(service, run_relay=False, run_consumer=False))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    await wait_for(started, timeout=15, interval=0.05, what="uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True  # graceful: the lifespan's shutdown runs (the runtime stops)
        await asyncio.wait_for(task, 15)

"""Finance test fixtures: a clean schema per test and a real local HTTP fake gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.finance.gateway import GatewayServer
from tests.harness import engine_for, truncate_schema


@pytest.fixture(scope="session")
def gateway_server() -> Iterator[GatewayServer]:
    server = GatewayServer().start()
    yield server
    server.stop()


@pytest.fixture
def gateway(gateway_server: GatewayServer) -> GatewayServer:
    gateway_server.gw.reset()
    return gateway_server


@pytest.fixture(autouse=True)
async def clean_finance() -> AsyncIterator[None]:
    engine = engine_for("finance")
    try:
        await truncate_schema(engine, "finance")
    finally:
        await engine.dispose()
    yield

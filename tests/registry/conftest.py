"""Registry test fixtures: a clean registry schema (regions reloaded) and an in-process service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.db.seed import region_rows, upsert_regions_stmt
from tests.harness import engine_for, running_service, truncate_schema


@pytest.fixture(scope="session")
async def reg_engine() -> AsyncIterator[AsyncEngine]:
    engine = engine_for("registry")
    yield engine
    await engine.dispose()


@pytest.fixture
async def clean(reg_engine: AsyncEngine) -> AsyncEngine:
    await truncate_schema(reg_engine, "registry")
    async with reg_engine.begin() as conn:
        await conn.execute(upsert_regions_stmt(), region_rows())
    return reg_engine


@pytest.fixture
async def client(clean: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service("registry") as (_, c):
        yield c


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def scalar_rows(engine: AsyncEngine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]

"""Helpers for integration tests: settings, tokens, table cleanup, an in-process service with HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth import Principal, Role, issue_token
from shared.db import create_engine
from shared.runtime import ServiceRuntime
from shared.settings import Settings


def settings(service: str, **overrides: Any) -> Settings:
    return Settings(service=service, **overrides)


def topic(logical: str) -> str:
    """The physical name of a declared topic in the current test's namespace (see tests/conftest.py)."""
    from shared.events.catalog import physical

    return physical(logical, os.environ.get("ZJTX_TOPIC_NAMESPACE", ""))


def token(role: str, region: str, uscc: str | None = None, sub: str | None = None, ttl: int = 3600) -> str:
    return issue_token(settings("registry"), role=role, region=region, uscc=uscc, sub=sub, ttl=ttl)


def auth(role: str, region: str, uscc: str | None = None, sub: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, region, uscc, sub)}"}


async def truncate_schema(engine: AsyncEngine, schema: str) -> None:
    """Empty every table of ``schema`` except alembic's version table."""
    async with engine.begin() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :s AND tablename <> 'alembic_version'"),
            {"s": schema},
        )
        names = [f'"{schema}"."{r[0]}"' for r in rows]
        if names:
            await conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))


@contextlib.asynccontextmanager
async def running_service(
    service: str, *, relay: bool = False, consumer: bool = False, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Start a service in-process (lifespan included) and yield its app and an HTTP client to it."""
    module = importlib.import_module(f"services.{service}.main")
    app: FastAPI = module.build_app(settings(service, run_relay=relay, run_consumer=consumer, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{service}") as client:
            yield app, client


def runtime_of(app: FastAPI) -> ServiceRuntime:
    runtime: ServiceRuntime = app.state.runtime
    return runtime


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0, interval: float = 0.1, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def engine_for(service: str) -> AsyncEngine:
    return create_engine(settings(service).database_url, pool_size=2)


def unique_group(prefix: str = "test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def make_producer() -> AIOKafkaProducer:
    from shared.events.kafka import make_producer as mk

    producer = mk(settings("registry"))
    await producer.start()
    return producer


def _maybe_physical(name: str) -> str | None:
    from shared.events.catalog import ALL_TOPICS

    return topic(name) if name in ALL_TOPICS else None


def _reader(name: str) -> AIOKafkaConsumer:
    """A consumer of ``name`` from its start, in a throwaway group."""
    return AIOKafkaConsumer(
        name,
        bootstrap_servers=settings("registry").kafka_bootstrap,
        group_id=unique_group("reader"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=1500,
        heartbeat_interval_ms=300,
    )


async def published_event(key: str, event_type: str, timeout: float = 15.0) -> bool:
    """Whether an event of ``event_type`` keyed ``key`` reaches its topic within ``timeout`` (read from the start
    with a throwaway group: the relay deletes the outbox rows it published, so the topic is where to look)."""
    from shared.events.catalog import topic_of

    consumer = _reader(topic(topic_of(event_type.split(".")[1])))
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=300)).values():
                for m in msgs:
                    if m.key == key.encode() and ("ce_type", event_type.encode()) in (m.headers or ()):
                        return True
    finally:
        await consumer.stop()
    return False


async def read_topic(topic: str, expected: int, timeout: float = 15.0) -> list[Any]:
    """Read ``expected`` records from the start of ``topic`` (a declared name is mapped into the test's
    namespace) with a throwaway group."""
    consumer = _reader(_maybe_physical(topic) or topic)
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for msgs in batch.values():
                out.extend(msgs)
    finally:
        await consumer.stop()
    return out


# ---- route matrices (tests/*/test_route_matrix.py): every route of a service's OpenAPI walked as foreign identities


def openapi_routes(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path template, operation) of every route in an OpenAPI document."""
    return [(m.upper(), path, op) for path, ops in spec["paths"].items() for m, op in ops.items()]


def fill_path(path: str, values: dict[str, str]) -> str:
    """``path`` with each ``{parameter}`` replaced from ``values``; a parameter without a value fails the test (a new
    route must be given values in its matrix)."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        assert name in values, f"no value for path parameter {name} of {path}: add one to the matrix's values"
        return values[name]

    return re.sub(r"\{(\w+)\}", one, path)


async def walk_as(
    client: httpx.AsyncClient,
    spec: dict[str, Any],
    skip: set[tuple[str, str]],
    values: dict[str, str],
    writes: dict[tuple[str, str], Any],
    query: Callable[[dict[str, Any]], dict[str, Any]],
    headers: dict[str, str],
    write_headers: dict[str, str] | None = None,
) -> list[tuple[str, str, list[httpx.Response]]]:
    """Every route of ``spec`` not in ``skip`` called once with ``headers``: a GET with its query parameters (a
    collection GET also without them), a write with its body from ``writes`` (and ``write_headers``, if given).
    (METHOD, path template, answers) per route, for the matrix to judge."""
    walked: list[tuple[str, str, list[httpx.Response]]] = []
    for method, path, op in openapi_routes(spec):
        if (method, path) in skip:
            continue
        url = fill_path(path, values)
        if method == "GET":
            answers = [await client.get(url, params=query(op), headers=headers)]
            if "{" not in path:
                answers.append(await client.get(url, headers=headers))
        else:
            assert (method, path) in writes, f"no body for {method} {path}: add one to bodies()"
            answers = [await client.request(method, url, json=writes[(method, path)],
                                            headers=headers if write_headers is None else write_headers)]
        walked.append((method, path, answers))
    return walked


# ---- hot reads (tests/*/test_hot_reads.py): the fast path read as each kind of caller, held equal to the session's


def officials_and_admin() -> dict[str, Principal]:
    """Officials inside 余杭 (330110: its county, city 杭州, the province), outside it (萧山, 宁波) and the admin."""
    return {
        "county 余杭": Principal(sub="c", role=Role.COUNTY, region="330110"),
        "city 杭州": Principal(sub="h", role=Role.CITY, region="330100"),
        "province": Principal(sub="p", role=Role.PROVINCE, region="330000"),
        "admin": Principal(sub="a", role=Role.ADMIN, region="330000"),
        "county 萧山": Principal(sub="x", role=Role.COUNTY, region="330109"),
        "city 宁波": Principal(sub="n", role=Role.CITY, region="330200"),
    }


def bearer(p: Principal) -> dict[str, str]:
    """The Authorization header of a token for ``p``."""
    return auth(p.role.value, p.region, uscc=p.uscc, sub=p.sub)

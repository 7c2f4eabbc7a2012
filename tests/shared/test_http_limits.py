"""Bounded inputs and failures (issue 16 items 4, 8, 9): body limits enforced while streaming (413 without
reading the body, /healthz unaffected), rate limits (429 + Retry-After), NUMERIC overflow → 422, the database
unreachable → 503 + Retry-After; and the NUL refusal that no longer reads the body of every GET."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from sqlalchemy import text

from shared.app import create_app
from shared.deps import PrincipalDep, SessionDep
from shared.http import body_limit
from shared.infra import free_port
from shared.runtime import ServiceSpec
from tests.harness import auth, settings
from tests.shared.app_support import build_test_app, running
from tests.shared.support import scratch

PROBLEM = "application/problem+json"
CITY = auth("city_official", "330100")


class Amount(BaseModel):
    amount: Decimal


def limits_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/lim")

    @router.post("/echo")
    async def echo(body: dict[str, Any], principal: PrincipalDep) -> dict[str, int]:
        return {"keys": len(body)}

    @router.post("/big", openapi_extra=body_limit(4 << 20))
    async def big(body: dict[str, Any], principal: PrincipalDep) -> dict[str, int]:
        return {"keys": len(body)}

    @router.post("/amount")
    async def amount(body: Amount, principal: PrincipalDep, session: SessionDep) -> dict[str, str]:
        # NUMERIC(14,2) like the budget totals: 99999999999999.99 does not fit.
        value = (await session.execute(text("SELECT CAST(:v AS numeric(14,2))"), {"v": body.amount})).scalar_one()
        return {"amount": str(value)}

    @router.get("/db")
    async def db(principal: PrincipalDep, session: SessionDep) -> dict[str, int]:
        return {"one": (await session.execute(text("SELECT 1"))).scalar_one()}

    @router.get("/pid")
    async def pid(principal: PrincipalDep, session: SessionDep) -> dict[str, int]:
        return {"pid": (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()}

    return router


def limits_app(**overrides: Any) -> FastAPI:
    from shared.backbone import Backbone
    from shared.db import make_metadata

    spec = ServiceSpec(name="registry", title="限额测试", description="test only",
                       backbone=Backbone("limtest", make_metadata("limtest")))
    overrides.setdefault("run_relay", False)
    overrides.setdefault("run_consumer", False)
    return create_app(spec, [limits_router()], settings("registry", **overrides))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with running(limits_app()) as c:
        yield c


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    return body


async def test_body_over_the_default_limit_is_413(client: httpx.AsyncClient) -> None:
    small = {f"k{i}": i for i in range(100)}
    assert (await client.post("/api/v1/lim/echo", json=small, headers=CITY)).json() == {"keys": 100}
    payload = json.dumps({f"k{i}": "x" * 20 for i in range(60_000)}).encode()  # ~2 MB
    body = _problem(await client.post("/api/v1/lim/echo", content=payload,
                                      headers={**CITY, "content-type": "application/json"}), 413)
    assert "上限" in body["detail"] and body["errors"][0]["field"] == "body"
    # The route's own limit (4 MB) lets it through there.
    resp = await client.post("/api/v1/lim/big", content=payload, headers={**CITY, "content-type": "application/json"})
    assert resp.status_code == 200 and resp.json() == {"keys": 60_000}


async def test_chunked_body_is_counted_while_streaming(client: httpx.AsyncClient) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"a": "'
        for _ in range(4096):  # up to 256 MB if nobody stopped reading
            sent += 65536
            yield b"x" * 65536
        yield b'"}'

    resp = await client.post("/api/v1/lim/echo", content=chunks(), headers={**CITY, "content-type": "application/json"})
    _problem(resp, 413)
    assert sent < 4 << 20, f"the guard read {sent} bytes before refusing"


async def test_nul_is_refused_without_reading_bodies_of_gets(client: httpx.AsyncClient) -> None:
    body = _problem(await client.post("/api/v1/lim/echo", json={"a": {"b\u0000": 1}}, headers=CITY), 422)
    assert body["errors"][0]["field"] == "a.b\u0000"
    body = _problem(await client.post("/api/v1/lim/echo", json={"a": ["ok", "x\u0000"]}, headers=CITY), 422)
    assert body["errors"][0]["field"] == "a.1"
    body = _problem(await client.get("/api/v1/lim/db?q=a%00b", headers=CITY), 422)
    assert body["errors"][0]["field"] == "q"
    # A NUL split across two streamed chunks is still seen.

    async def split() -> AsyncIterator[bytes]:
        yield b'{"k": "ab\\u00'
        yield b'00c"}'

    body = _problem(await client.post("/api/v1/lim/echo", content=split(),
                                      headers={**CITY, "content-type": "application/json"}), 422)
    assert body["errors"][0]["field"] == "k"


async def test_numeric_overflow_is_422(client: httpx.AsyncClient) -> None:
    ok = await client.post("/api/v1/lim/amount", json={"amount": "1234.50"}, headers=CITY)
    assert ok.status_code == 200 and ok.json() == {"amount": "1234.50"}
    body = _problem(await client.post("/api/v1/lim/amount", json={"amount": "99999999999999.99"}, headers=CITY), 422)
    assert "超出" in body["detail"]


async def test_rate_limit_429_with_retry_after() -> None:
    async with running(limits_app(rate_limit_token=5, rate_limit_token_burst=3)) as client:
        statuses = [(await client.get("/healthz")).status_code for _ in range(10)]
        assert statuses == [200] * 10  # health is never limited
        codes = []
        for _ in range(5):
            resp = await client.post("/api/v1/lim/echo", json={}, headers=CITY)
            codes.append(resp.status_code)
        assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
        last = await client.post("/api/v1/lim/echo", json={}, headers=CITY)
        body = _problem(last, 429)
        assert int(last.headers["retry-after"]) >= 1 and "频繁" in body["detail"]
        # Another token has its own bucket.
        other = auth("city_official", "330100", sub="someone-else")
        assert (await client.post("/api/v1/lim/echo", json={}, headers=other)).status_code == 200
    async with running(limits_app(rate_limit_ip=5, rate_limit_ip_burst=2, rate_limit_token=0)) as client:
        codes = [(await client.post("/api/v1/lim/echo", json={}, headers=auth("city_official", "330100",
                                                                              sub=f"u{i}"))).status_code
                 for i in range(4)]
        assert codes[:2] == [200, 200] and codes[2:] == [429, 429]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once closed


async def test_database_unreachable_is_503_with_retry_after() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/zjtx"
    async with running(limits_app(database_url=url)) as client:
        for _ in range(3):
            body = _problem(await client.get("/api/v1/lim/db", headers=CITY), 503)
            assert "数据库" in body["detail"]
        resp = await client.get("/api/v1/lim/db", headers=CITY)
        assert resp.headers["retry-after"] == "5"
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("error")


async def test_connections_dropped_by_the_server_answer_503_once_then_recover() -> None:
    """No pool_pre_ping: a connection PostgreSQL dropped (as in a restart) fails one request with 503 and
    Retry-After; the pool is invalidated and the next request works."""
    import asyncpg

    from shared.db import asyncpg_dsn

    async with running(limits_app()) as client:
        pid = (await client.get("/api/v1/lim/pid", headers=CITY)).json()["pid"]
        conn = await asyncpg.connect(asyncpg_dsn(settings("registry").database_url))
        try:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await conn.close()
        await asyncio.sleep(0.1)
        answers = [await client.get("/api/v1/lim/db", headers=CITY) for _ in range(4)]
        failed = [r for r in answers if r.status_code != 200]
        assert len(failed) <= 1, [r.status_code for r in answers]  # the request that met the dropped connection
        for resp in failed:
            _problem(resp, 503)
            assert resp.headers["retry-after"] == "5"
        assert answers[-1].status_code == 200
        pids = {(await client.get("/api/v1/lim/pid", headers=CITY)).json()["pid"] for _ in range(4)}
        assert pid not in pids


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_16_mb_body_is_refused_fast_and_healthz_stays_quick() -> None:
    """Issue 16 item 4 over a real socket: a 16 MB JSON body of many small items is refused in well under a
    second, and /healthz answers promptly while it is being sent."""
    payload = json.dumps([{"k": i} for i in range(1_600_000)]).encode()
    assert len(payload) > 16_000_000
    async with scratch() as sc, served(build_test_app(sc.src)) as base, httpx.AsyncClient(base_url=base) as client:
        started = time.perf_counter()
        big = asyncio.create_task(client.post("/api/v1/bbtest/things", content=payload,
                                              headers={**CITY, "content-type": "application/json"}))
        health_ms = []
        while not big.done():
            t0 = time.perf_counter()
            assert (await client.get("/healthz")).status_code == 200
            health_ms.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.01)
        resp = await big
        elapsed = time.perf_counter() - started
        _problem(resp, 413)
        assert elapsed < 2.0, elapsed
        assert not health_ms or max(health_ms) < 500, health_ms
        # Chunked (no Content-Length): counted while streaming, refused too.

        async def stream() -> AsyncIterator[bytes]:
            for i in range(0, len(payload), 1 << 16):
                yield payload[i:i + (1 << 16)]

        t0 = time.perf_counter()
        resp = await client.post("/api/v1/bbtest/things", content=stream(),
                                 headers={**CITY, "content-type": "application/json"})
        assert resp.status_code == 413 and time.perf_counter() - t0 < 2.0
        assert (await client.get("/healthz")).status_code == 200


async def test_http_metrics_per_route_template(client: httpx.AsyncClient) -> None:
    """The guard counts requests per route template (not per raw path), method and status class."""
    await client.post("/api/v1/lim/echo", json={"a": 1}, headers=CITY)
    await client.get("/api/v1/lim/nowhere", headers=CITY)
    text_ = (await client.get("/metrics")).text
    assert 'http_requests_total{handler="/api/v1/lim/echo",method="POST",status="2xx"}' in text_
    assert 'http_requests_total{handler="none",method="GET",status="4xx"}' in text_
    assert 'http_request_duration_seconds_bucket{handler="/api/v1/lim/echo",le="0.005",method="POST"}' in text_


async def test_registry_imports_take_large_files_other_routes_do_not() -> None:
    """The route-level limit on registry's /imports (the file plus its envelope) lets a 2 MB upload through,
    while a 2 MB JSON body elsewhere is refused before it is read."""
    from tests.harness import running_service

    csv = ("统一社会信用代码,企业名称\n" + "x" * 2_000_000).encode()
    async with running_service("registry") as (_, client):
        resp = await client.post("/api/v1/imports?kind=enterprises", headers=CITY,
                                 files={"file": ("big.csv", csv, "text/csv")})
        assert resp.status_code != 413, resp.text
        big_json = json.dumps({"name": "x" * 2_000_000}).encode()
        resp = await client.post("/api/v1/enterprises", content=big_json,
                                 headers={**CITY, "content-type": "application/json"})
        _problem(resp, 413)

"""shared.db_reads, the hot-read facility: timestamps written by PostgreSQL as pydantic writes them, one statement
per kind of caller, jurisdiction from the region tree, and failures that answer 503 + Retry-After (unreachable) or
not at all (a connection the server dropped is retried)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel

from shared.app import create_app
from shared.auth import Principal, Role
from shared.backbone import Backbone
from shared.db import asyncpg_dsn, make_metadata
from shared.db_reads import ALL, COMMISSIONER, ENTERPRISE, TERRITORY, ReadPool, Scope, ScopedRead, iso_utc, scope_of
from shared.deps import PrincipalDep, read_pool
from shared.regions import region_tree
from shared.runtime import ServiceSpec
from tests.harness import auth, settings
from tests.shared.app_support import running
from tests.shared.test_http_limits import _closed_port

DSN = asyncpg_dsn(settings("registry").database_url)
CITY = auth("city_official", "330100")


class Stamp(BaseModel):
    at: datetime


@pytest.fixture
async def pool() -> AsyncIterator[ReadPool]:
    p = ReadPool(DSN, max_size=2)
    yield p
    await p.close()


async def test_timestamps_are_written_as_pydantic_orjson_and_isoformat_write_them(pool: ReadPool) -> None:
    shanghai = timezone(timedelta(hours=8))
    stamps = [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 123400, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 5, tzinfo=UTC),
        datetime(2026, 7, 1, 0, 30, 0, 999999, tzinfo=shanghai),  # the day before in UTC
        datetime(1999, 2, 28, 12, 0, 0, 10, tzinfo=UTC),
    ]
    sql = f"SELECT {iso_utc('$1::timestamptz')}, {iso_utc('$1::timestamptz', '+00:00')}"
    conn = await asyncpg.connect(DSN, server_settings={"TimeZone": "Asia/Shanghai"})  # not the session's zone
    try:
        for at in stamps:
            z, offset = await conn.fetchrow(sql, at)
            assert z == Stamp(at=at.astimezone(UTC)).model_dump(mode="json")["at"] == orjson.loads(
                orjson.dumps(at.astimezone(UTC), option=orjson.OPT_UTC_Z))
            assert offset == at.astimezone(UTC).isoformat()
        assert (await conn.fetchrow(sql, None)) == (None, None)
    finally:
        await conn.close()


def test_scopes_follow_the_principal_and_the_region_tree() -> None:
    county = Principal(sub="a", role=Role.COUNTY, region="330110")
    city = Principal(sub="b", role=Role.CITY, region="330100")
    assert scope_of(county) == Scope(TERRITORY, sorted(region_tree().covered("330110")))
    assert scope_of(city).kind == TERRITORY and set(scope_of(city).arg) == region_tree().covered("330100")
    assert "330110" in scope_of(city).arg and "330200" not in scope_of(city).arg
    assert scope_of(Principal(sub="c", role=Role.ADMIN, region="330000")) == Scope(ALL)
    ent = Principal(sub="d", role=Role.ENTERPRISE, region="330110", uscc="91330110MA27XX0072")
    assert scope_of(ent) == Scope(ENTERPRISE, "91330110MA27XX0072")
    assert scope_of(Principal(sub="c-1", role=Role.COMMISSIONER, region="330100")) == Scope(COMMISSIONER, "c-1")


async def test_scoped_read_has_one_statement_per_kind_and_refuses_the_others(pool: ReadPool) -> None:
    read = ScopedRead(
        "SELECT v.code FROM (VALUES ('330110', 'e1'), ('330212', 'e2')) v(code, uscc) WHERE v.code = $1 AND {scope}",
        {ALL: "true", TERRITORY: "v.code = ANY({arg}::text[])", ENTERPRISE: "v.uscc = {arg}"},
    )
    assert read.statements[TERRITORY].endswith("AND (v.code = ANY($2::text[]))")
    county = scope_of(Principal(sub="a", role=Role.COUNTY, region="330110"))
    assert (await read.fetchrow(pool, county, "330110"))[0] == "330110"
    assert await read.fetchrow(pool, county, "330212") is None
    assert (await read.fetchrow(pool, Scope(ALL), "330212"))[0] == "330212"
    assert (await read.fetchrow(pool, Scope(ENTERPRISE, "e2"), "330212"))[0] == "330212"
    assert await read.fetchrow(pool, Scope(ENTERPRISE, "e1"), "330212") is None
    assert await read.fetchrow(pool, Scope(COMMISSIONER, "c-1"), "330110") is None  # no condition: nothing
    with pytest.raises(ValueError):
        ScopedRead("SELECT 1 WHERE {scope}", {ALL: "x = {arg}"})
    with pytest.raises(ValueError):
        ScopedRead("SELECT 1 WHERE {scope}", {"everyone": "true"})


async def test_no_transaction_is_left_open_and_no_reset_round_trip(pool: ReadPool) -> None:
    first = await pool.fetchrow("SELECT pg_backend_pid(), set_config('zjtx.probe', 'kept', false)")
    again = await pool.fetchrow("SELECT pg_backend_pid(), current_setting('zjtx.probe', true)")
    assert first is not None and again is not None and first[0] == again[0]
    assert again[1] == "kept"  # no RESET ALL (the pool's default reset, a round trip per read) in between
    conn = await asyncpg.connect(DSN)
    try:
        state = await conn.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", first[0])
    finally:
        await conn.close()
    assert state == "idle"  # not "idle in transaction": no BEGIN, nothing to COMMIT


async def terminate(*pids: int) -> None:
    """End these server processes, as a PostgreSQL restart would."""
    conn = await asyncpg.connect(DSN)
    try:
        for pid in pids:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()
    await asyncio.sleep(0.1)


async def test_unreachable_database_raises_connection_error() -> None:
    for dsn in (f"postgresql://postgres@127.0.0.1:{_closed_port()}/zjtx", "postgresql://postgres@/zjtx?host=/nowhere"):
        p = ReadPool(dsn)
        with pytest.raises(ConnectionError):
            await p.fetchrow("SELECT 1")
        await p.close()


async def test_connections_the_server_dropped_are_retried_on_fresh_ones(pool: ReadPool) -> None:
    pids = {(await pool.fetchrow("SELECT pg_backend_pid()"))[0] for _ in range(2)}
    await terminate(*pids)
    fresh = (await pool.fetchrow("SELECT pg_backend_pid()"))[0]
    assert fresh not in pids


# ------------------------------------------------------------------------------------ through a service's app


def reads_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/reads")

    class One(BaseModel):
        one: int

    @router.get("/one", response_model=One)
    async def one(principal: PrincipalDep, request: Request) -> Response:
        row = await read_pool(request).fetchrow("SELECT json_build_object('one', 1)::text")
        assert row is not None
        return Response(row[0], media_type="application/json")

    @router.get("/pid")
    async def pid(principal: PrincipalDep, request: Request) -> dict[str, Any]:
        row = await read_pool(request).fetchrow("SELECT pg_backend_pid()")
        assert row is not None
        return {"pid": row[0]}

    return router


def reads_app(**overrides: Any) -> FastAPI:
    spec = ServiceSpec(name="registry", title="读测试", description="test only",
                       backbone=Backbone("readtest", make_metadata("readtest")))
    return create_app(spec, [reads_router()], settings("registry", run_relay=False, run_consumer=False, **overrides))


def _problem_503(resp: httpx.Response) -> None:
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.headers["retry-after"] == "5" and "数据库" in resp.json()["detail"]


async def test_fast_read_answers_503_with_retry_after_when_the_database_is_unreachable() -> None:
    for url in (f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/zjtx",
                "postgresql+asyncpg://postgres@/zjtx?host=/nowhere"):
        async with running(reads_app(database_url=url)) as client:
            for _ in range(2):
                _problem_503(await client.get("/api/v1/reads/one", headers=CITY))


async def test_fast_read_survives_dropped_connections_and_documents_its_model() -> None:
    async with running(reads_app()) as client:
        assert (await client.get("/api/v1/reads/one", headers=CITY)).json() == {"one": 1}
        assert (await client.get("/api/v1/reads/one")).status_code == 401
        pid = (await client.get("/api/v1/reads/pid", headers=CITY)).json()["pid"]
        await terminate(pid)
        answers = [await client.get("/api/v1/reads/one", headers=CITY) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        schema = (await client.get("/openapi.json")).json()
        op = schema["paths"]["/api/v1/reads/one"]["get"]
        assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/One")
        assert op["security"] == [{"HTTPBearer": []}]

"""The service skeleton from ``shared.app.create_app``: identity and jurisdiction, RFC 9457 problems, health,
readiness, metrics, and the outbox under a broker outage (a TCP proxy in front of a second Tansu)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import jwt
import pytest

from shared.auth import issue_token
from shared.db import asyncpg_dsn
from shared.events.outbox import emit
from shared.infra import free_port, start_tansu
from shared.settings import DEV_JWT_SECRET
from tests.harness import auth, settings, wait_for
from tests.shared.app_support import build_test_app, running
from tests.shared.support import REGISTERED, Scratch, TcpProxy, header, new_uscc, read_all, scratch

PROBLEM = "application/problem+json"
REGION_URL = "/api/v1/bbtest/regions/{}"


@pytest.fixture
async def sc() -> AsyncIterator[Scratch]:
    async with scratch() as s:
        yield s


@pytest.fixture
async def client(sc: Scratch) -> AsyncIterator[httpx.AsyncClient]:
    async with running(build_test_app(sc.src)) as c:
        yield c


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def assert_problem(resp: httpx.Response, status: int) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = resp.json()
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


# --- 401 -------------------------------------------------------------------------------------------------

async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    resp = await client.get(REGION_URL.format("330106"))
    body = assert_problem(resp, 401)
    assert resp.headers["www-authenticate"] == "Bearer"
    assert "令牌" in str(body["detail"])


async def test_expired_token_is_401(client: httpx.AsyncClient) -> None:
    token = issue_token(settings("registry"), role="city_official", region="330100", ttl=-30)
    body = assert_problem(await client.get(REGION_URL.format("330106"), headers=_bearer(token)), 401)
    assert "过期" in str(body["detail"])


async def test_wrong_signature_is_401(client: httpx.AsyncClient) -> None:
    forged = jwt.encode(
        {"sub": "x", "role": "province_official", "region": "330000", "exp": int(time.time()) + 600},
        "not-the-secret-but-long-enough-for-hs256-0123456789",
        algorithm="HS256",
    )
    assert_problem(await client.get(REGION_URL.format("330106"), headers=_bearer(forged)), 401)
    # A valid token with its signature swapped for another one's.
    good = issue_token(settings("registry"), role="province_official", region="330000")
    tampered = good.rsplit(".", 1)[0] + "." + forged.rsplit(".", 1)[1]
    assert_problem(await client.get(REGION_URL.format("330106"), headers=_bearer(tampered)), 401)


async def test_alg_none_is_401(client: httpx.AsyncClient) -> None:
    claims = {"sub": "x", "role": "admin", "region": "330000", "exp": int(time.time()) + 600}
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert_problem(await client.get(REGION_URL.format("330106"), headers=_bearer(unsigned)), 401)


async def test_malformed_claims_are_401(client: httpx.AsyncClient) -> None:
    now = int(time.time())
    for claims in (
        {"sub": "x", "role": "emperor", "region": "330000", "exp": now + 600},  # unknown role
        {"sub": "x", "role": "enterprise", "region": "330106", "exp": now + 600},  # enterprise without uscc
        {"sub": "x", "role": "admin", "region": "330000"},  # no exp
    ):
        token = jwt.encode(claims, DEV_JWT_SECRET, algorithm="HS256")
        assert_problem(await client.get(REGION_URL.format("330106"), headers=_bearer(token)), 401)
    assert_problem(await client.get(REGION_URL.format("330106"), headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401)
    assert_problem(await client.get(REGION_URL.format("330106"), headers=_bearer("not.a.jwt")), 401)


# --- 403 / 404 -------------------------------------------------------------------------------------------

async def test_wrong_role_is_403(client: httpx.AsyncClient) -> None:
    for headers in (auth("enterprise", "330106", uscc=new_uscc()), auth("commissioner", "330106")):
        body = assert_problem(await client.get(REGION_URL.format("330106"), headers=headers), 403)
        assert "无权" in str(body["detail"])


async def test_jurisdiction_other_region_is_404(client: httpx.AsyncClient) -> None:
    cases = [
        ("province_official", "330000", "330206", 200),
        ("province_official", "330000", "320106", 404),  # Jiangsu is not ours
        ("city_official", "330100", "330106", 200),
        ("city_official", "330100", "330100", 200),
        ("city_official", "330100", "330206", 404),  # Ningbo's county, Hangzhou's official
        ("county_official", "330106", "330106", 200),
        ("county_official", "330106", "330108", 404),
        ("county_official", "330106", "330100", 404),  # a county does not see its city
        ("admin", "330000", "110105", 200),
    ]
    for role, region, target, expected in cases:
        resp = await client.get(REGION_URL.format(target), headers=auth(role, region))
        if expected == 200:
            assert resp.status_code == 200, (role, region, target, resp.text)
            assert resp.json()["code"] == target
        else:
            body = assert_problem(resp, 404)
            assert "管辖" in str(body["detail"]), body


# --- 422 and problem shape --------------------------------------------------------------------------------

async def test_unknown_body_field_is_422_with_the_field(client: httpx.AsyncClient, sc: Scratch) -> None:
    headers = auth("city_official", "330100")
    for field in ("tier", "status", "amount", "region"):
        body = {"uscc": new_uscc(), "name": "杭州测试科技有限公司", field: "x"}
        problem = assert_problem(await client.post("/api/v1/bbtest/things", json=body, headers=headers), 422)
        errors = problem["errors"]
        assert isinstance(errors, list)
        assert [e["field"] for e in errors] == [field]
        assert "不允许的字段" in errors[0]["message"]
    missing = assert_problem(await client.post("/api/v1/bbtest/things", json={"name": "x"}, headers=headers), 422)
    assert [e["field"] for e in missing["errors"]] == ["uscc"]  # type: ignore[union-attr]
    assert "缺少必填字段" in missing["errors"][0]["message"]  # type: ignore[index]
    bad_json = await client.post(
        "/api/v1/bbtest/things", content=b"{oops", headers={**headers, "Content-Type": "application/json"}
    )
    assert_problem(bad_json, 422)
    assert await sc.pending() == 0, "nothing was written by rejected requests"


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/nope"), 404)
    assert_problem(await client.delete("/api/v1/bbtest/things"), 405)


async def test_write_commits_event_and_audit_row(client: httpx.AsyncClient, sc: Scratch) -> None:
    uscc = new_uscc()
    resp = await client.post(
        "/api/v1/bbtest/things",
        json={"uscc": uscc, "name": "杭州测试科技有限公司"},
        headers={**auth("county_official", "330106", sub="张三"), "X-Request-ID": "req-123"},
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["x-request-id"] == "req-123"
    async with sc.sf() as s:
        row = (await s.execute(sc.src.outbox.select())).one()
        audit = (await s.execute(sc.src.audit_log.select())).one()
    assert row.key == uscc
    assert row.headers["ce_regioncode"] == "330106"
    assert row.headers["ce_correlationid"] == "req-123"
    assert audit.actor == "张三" and audit.role == "county_official" and audit.region == "330106"
    assert audit.request_id == "req-123" and audit.after["uscc"] == uscc


async def test_unhandled_error_is_500_problem_without_internals(sc: Scratch) -> None:
    app = build_test_app(sc.src)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://bbtest") as c:
            resp = await c.get("/api/v1/bbtest/boom", headers={"X-Request-ID": "req-500"})
    body = assert_problem(resp, 500)
    assert "secret internal detail" not in resp.text
    assert "服务器内部错误" in str(body["detail"])


async def test_problem_carries_request_id_and_instance(client: httpx.AsyncClient) -> None:
    headers = {**auth("city_official", "330100"), "X-Request-ID": "r-9"}
    resp = await client.get(REGION_URL.format("330206"), headers=headers)
    body = assert_problem(resp, 404)
    assert body["request_id"] == "r-9"
    assert body["instance"] == REGION_URL.format("330206")
    assert resp.headers["x-request-id"] == "r-9"


# --- health, readiness, metrics -----------------------------------------------------------------------------

async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status_code == 200 and resp.json()["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "broker": "ok"}


async def test_readyz_is_503_when_the_database_is_unreachable(sc: Scratch) -> None:
    bad = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    async with running(build_test_app(sc.src, database_url=bad)) as c:
        assert (await c.get("/healthz")).status_code == 200, "liveness does not depend on the DB"
        resp = await c.get("/readyz")
        assert resp.status_code == 503
        checks = resp.json()["checks"]
        assert checks["database"].startswith("error")


async def test_metrics_expose_outbox_backlog_after_a_relay_run(sc: Scratch) -> None:
    async with running(build_test_app(sc.src, run_relay=True)) as c:
        uscc = new_uscc()
        resp = await c.post(
            "/api/v1/bbtest/things", json={"uscc": uscc, "name": "测试"}, headers=auth("city_official", "330100")
        )
        assert resp.status_code == 201

        async def published() -> bool:
            return await sc.pending() == 0

        await wait_for(published, timeout=15, what="relay published")

        async def exported() -> bool:
            text = (await c.get("/metrics")).text
            return f'outbox_pending_rows{{service="{sc.src.service}"}} 0.0' in text

        await wait_for(exported, timeout=5, what="outbox gauge")
        text = (await c.get("/metrics")).text
        assert f'outbox_oldest_pending_age_seconds{{service="{sc.src.service}"}}' in text
        assert f'outbox_published_total{{service="{sc.src.service}"}} 1.0' in text
        assert "http_requests_total" in text or "http_request_duration" in text


async def test_notify_once_per_transaction_even_on_a_reused_session(sc: Scratch) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(settings("registry").database_url))
    got: list[str] = []
    await conn.add_listener(sc.src.notify_channel, lambda *args: got.append(args[2]))
    try:
        async with sc.sf() as s:
            for _ in range(2):  # two transactions on one session, two events each
                async with s.begin():
                    for _ in range(2):
                        u = new_uscc()
                        await emit(s, sc.src, REGISTERED, u, {"uscc": u})

        async def two() -> bool:
            return len(got) >= 2

        await wait_for(two, timeout=5, what="two notifications")
        await asyncio.sleep(0.2)
        assert len(got) == 2
    finally:
        await conn.close()


# --- broker outage ------------------------------------------------------------------------------------------

async def test_broker_outage_api_keeps_accepting_and_outbox_drains_after() -> None:
    broker_port = free_port()
    proxy = TcpProxy(broker_port)
    await proxy.start()
    tansu = start_tansu(broker_port, advertised_port=proxy.port)
    bootstrap = f"127.0.0.1:{proxy.port}"
    try:
        async with scratch(settings("registry", kafka_bootstrap=bootstrap)) as sc:
            app = build_test_app(sc.src, run_relay=True, kafka_bootstrap=bootstrap)
            headers = auth("city_official", "330100")
            ids: list[str] = []

            async def write() -> None:
                started = time.monotonic()
                resp = await c.post("/api/v1/bbtest/things", json={"uscc": new_uscc(), "name": "测试"}, headers=headers)
                assert resp.status_code == 201, resp.text
                assert time.monotonic() - started < 2.0, "a write must not wait for the broker"
                ids.append(resp.json()["event_id"])

            async def drained() -> bool:
                return await sc.pending() == 0

            async with running(app) as c:
                for _ in range(5):
                    await write()
                await wait_for(drained, timeout=15, what="initial drain")

                proxy.refuse()
                for _ in range(20):
                    await write()
                await asyncio.sleep(1.5)
                assert await sc.pending() == 20, "nothing is deleted while the broker is unreachable"
                assert proxy.refused > 0, "the relay did try to reach the broker"

                proxy.allow()
                await wait_for(drained, timeout=40, interval=0.25, what="backlog drained after the outage")

            records = await read_all(sc.topic, 25, bootstrap=bootstrap)
            assert {header(r, "ce_id") for r in records} == set(ids)
    finally:
        await proxy.close()
        tansu.terminate()
        tansu.wait(5)


async def test_broker_down_at_start_api_works_readyz_503_and_stop_is_prompt(sc: Scratch) -> None:
    app = build_test_app(sc.src, run_relay=True, run_consumer=True, kafka_bootstrap=f"127.0.0.1:{free_port()}")
    async with running(app) as c:
        ready = await c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["broker"] == "connecting"
        resp = await c.post(
            "/api/v1/bbtest/things", json={"uscc": new_uscc(), "name": "测试"}, headers=auth("city_official", "330100")
        )
        assert resp.status_code == 201, "writes are accepted into the outbox without a broker"
        assert await sc.pending() == 1
        started = time.monotonic()
        # leaving the block runs the lifespan shutdown
    assert time.monotonic() - started < 3.0, "shutdown must not wait for a broker that never came"

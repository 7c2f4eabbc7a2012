"""Enterprises over the API: registration, bad inputs change nothing, ETags, jurisdiction, listing."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.harness import auth
from tests.registry.conftest import scalar
from tests.registry.helpers import (
    LD,
    LIANDU,
    PROVINCE,
    XIAOSHAN,
    XS,
    YH,
    YUHANG,
    ZONE,
    ent_auth,
    enterprise,
    register,
    uscc,
)


async def counts(engine: AsyncEngine) -> tuple[int, int, int]:
    return (
        await scalar(engine, "SELECT count(*) FROM registry.enterprises"),
        await scalar(engine, "SELECT count(*) FROM registry.outbox"),
        await scalar(engine, "SELECT count(*) FROM registry.audit_log"),
    )


async def test_register_derives_facts_and_emits(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    data = await register(client, 1)
    assert data["is_manufacturing"] is True
    assert data["scale"] == "small" and data["scale_source"] == "derived"  # 120 staff, 3500万
    assert data["region_name"] == "余杭区" and data["version"] == 1 and data["status"] == "active"
    assert data["current_tiers"] == [] and data["pools"] == []
    payload = await scalar(
        clean, "SELECT payload FROM registry.outbox WHERE type = 'zjtx.registry.enterprise.registered.v1'"
    )
    assert payload["uscc"] == data["uscc"] and payload["region_code"] == YUHANG
    assert payload["liaison"] == {"name": "王伟", "mobile": "13812345678", "email": None}
    assert set(payload) == {
        "uscc",
        "name",
        "region_code",
        "industry_code",
        "is_manufacturing",
        "founded_on",
        "scale",
        "status",
        "focus",
        "liaison",
        "version",
    }
    assert await scalar(clean, "SELECT count(*) FROM registry.audit_log WHERE action = 'enterprise.register'") == 1


async def test_zone_and_warning_for_city_authority(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/enterprises", json=enterprise(2, ZONE), headers=auth("city_official", "331100"))
    assert r.status_code == 201, r.text
    assert r.json()["region_name"] == "丽水经济技术开发区"
    # USCC issued outside Zhejiang: registered, with a warning on positions 3–8
    body = enterprise(3, YUHANG, uscc="914403001922038216")
    r = await client.post("/api/v1/enterprises", json=body, headers=YH)
    assert r.status_code == 201
    assert any("440300" in w for w in r.json()["warnings"])


async def _assert_rejected(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    field: str,
) -> dict[str, Any]:
    before = await counts(engine)
    r = await client.post("/api/v1/enterprises", json=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = r.json()
    assert any(e["field"] == field for e in problem.get("errors", [])), problem
    assert await counts(engine) == before
    return problem


async def test_bad_inputs_are_precise_and_change_nothing(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    good = enterprise(10)
    bad18 = good["uscc"][:17] + ("0" if good["uscc"][17] != "0" else "1")
    p = await _assert_rejected(client, clean, {**good, "uscc": bad18}, YH, 422, "uscc")
    assert p["position"] == 18 and "第18位" in p["detail"]
    p = await _assert_rejected(client, clean, {**good, "uscc": "9133010057462616XH"}, YH, 422, "uscc")
    assert p["position"] == 17
    await _assert_rejected(client, clean, enterprise(11, XIAOSHAN), YH, 403, "region_code")
    await _assert_rejected(client, clean, {**good, "region_code": "330181"}, YH, 422, "region_code")  # retired
    await _assert_rejected(client, clean, {**good, "region_code": "330100"}, PROVINCE, 422, "region_code")  # a city
    await _assert_rejected(client, clean, {**good, "status": "deregistered"}, YH, 422, "status")  # unknown field
    await _assert_rejected(
        client, clean, {**good, "liaison": {"name": "李", "mobile": "12345678901"}}, YH, 422, "liaison.mobile"
    )
    await _assert_rejected(client, clean, {**good, "industry_code": "C3"}, YH, 422, "industry_code")
    r = await client.post("/api/v1/enterprises", json=good, headers=auth("enterprise", YUHANG, uscc=good["uscc"]))
    assert r.status_code == 403
    await register(client, 10)
    await _assert_rejected(client, clean, good, YH, 409, "uscc")


async def test_etag_optimistic_concurrency(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    code = (await register(client, 20))["uscc"]
    r = await client.get(f"/api/v1/enterprises/{code}", headers=YH)
    etag = r.headers["etag"]
    assert etag == '"v1"'
    r = await client.patch(f"/api/v1/enterprises/{code}", json={"name": "杭州新名称科技有限公司"}, headers=YH)
    assert r.status_code == 428
    r = await client.patch(
        f"/api/v1/enterprises/{code}",
        json={"name": "杭州新名称科技有限公司", "scale": "medium"},
        headers={**YH, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.headers["etag"] == '"v2"' and r.json()["scale_source"] == "given"
    outbox = await scalar(clean, "SELECT count(*) FROM registry.outbox")
    r = await client.patch(
        f"/api/v1/enterprises/{code}", json={"name": "过期写入有限公司"}, headers={**YH, "If-Match": etag}
    )
    assert r.status_code == 412
    assert r.headers["etag"] == '"v2"'
    r = await client.get(f"/api/v1/enterprises/{code}", headers=YH)
    assert r.json()["name"] == "杭州新名称科技有限公司"
    assert await scalar(clean, "SELECT count(*) FROM registry.outbox") == outbox
    # unknown field and moving out of jurisdiction: rejected, nothing changed
    r = await client.patch(f"/api/v1/enterprises/{code}", json={"version": 9}, headers={**YH, "If-Match": '"v2"'})
    assert r.status_code == 422
    r = await client.patch(
        f"/api/v1/enterprises/{code}", json={"region_code": XIAOSHAN}, headers={**YH, "If-Match": '"v2"'}
    )
    assert r.status_code == 403
    assert (await client.get(f"/api/v1/enterprises/{code}", headers=YH)).json()["version"] == 2


async def test_jurisdiction_and_enterprise_self_access(client: httpx.AsyncClient) -> None:
    a = (await register(client, 30))["uscc"]
    b = (await register(client, 31))["uscc"]
    ls = (await register(client, 32, LIANDU))["uscc"]
    assert (await client.get(f"/api/v1/enterprises/{ls}", headers=YH)).status_code == 404
    assert (await client.get(f"/api/v1/enterprises/{a}", headers=LD)).status_code == 404
    assert (await client.get(f"/api/v1/enterprises/{a}", headers=XS)).status_code == 404
    assert (await client.get(f"/api/v1/enterprises/{a}", headers=auth("city_official", "330100"))).status_code == 200
    assert (await client.get(f"/api/v1/enterprises/{ls}", headers=PROVINCE)).status_code == 200
    assert (await client.get(f"/api/v1/enterprises/{a}", headers=auth("agency", YUHANG))).status_code == 200
    assert (await client.get(f"/api/v1/enterprises/{a}", headers=auth("commissioner", "331102"))).status_code == 404
    me = ent_auth(a)
    assert (await client.get(f"/api/v1/enterprises/{a}", headers=me)).status_code == 200
    assert (await client.get(f"/api/v1/enterprises/{b}", headers=me)).status_code == 404
    listed = (await client.get("/api/v1/enterprises", headers=me)).json()["items"]
    assert [e["uscc"] for e in listed] == [a]
    # an enterprise may change its liaison, nothing else
    r = await client.patch(
        f"/api/v1/enterprises/{a}", json={"name": "改名有限公司"}, headers={**me, "If-Match": '"v1"'}
    )
    assert r.status_code == 403
    r = await client.patch(
        f"/api/v1/enterprises/{a}",
        json={"liaison": {"name": "赵敏", "mobile": "19912345678"}},
        headers={**me, "If-Match": '"v1"'},
    )
    assert r.status_code == 200 and r.json()["liaison"]["mobile"] == "19912345678"
    # a county official cannot deregister outside its county
    r = await client.post(f"/api/v1/enterprises/{ls}/deregister", json={"reason": "迁出"}, headers=YH)
    assert r.status_code == 404


async def test_list_filters_pagination_and_chinese_search(client: httpx.AsyncClient) -> None:
    for n in range(40, 47):
        await register(client, n)
    await register(client, 47, XIAOSHAN, name="杭州萧山华鼎电机有限公司", industry_code="3811")
    await register(client, 48, LIANDU, name="丽水瑞丰阀门有限公司", industry_code="3443")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/enterprises", params=params, headers=PROVINCE)).json()
        seen += [e["uscc"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 9 and len(set(seen)) == 9 and seen == sorted(seen)
    hz = (await client.get("/api/v1/enterprises", params={"region": "330100"}, headers=PROVINCE)).json()["items"]
    assert len(hz) == 8
    ls = (await client.get("/api/v1/enterprises", params={"region": "331100"}, headers=PROVINCE)).json()["items"]
    assert [e["name"] for e in ls] == ["丽水瑞丰阀门有限公司"]
    q = (await client.get("/api/v1/enterprises", params={"q": "华鼎"}, headers=PROVINCE)).json()["items"]
    assert [e["uscc"] for e in q] == [uscc(47, XIAOSHAN)]
    q = (await client.get("/api/v1/enterprises", params={"q": "精密机械4"}, headers=PROVINCE)).json()["items"]
    assert len(q) == 7
    ind = (await client.get("/api/v1/enterprises", params={"industry": "38"}, headers=PROVINCE)).json()["items"]
    assert [e["uscc"] for e in ind] == [uscc(47, XIAOSHAN)]
    # the county official's list never leaves the county, whatever the filter says
    yh = (await client.get("/api/v1/enterprises", params={"region": "330000"}, headers=YH)).json()["items"]
    assert len(yh) == 7
    bad = await client.get("/api/v1/enterprises", params={"cursor": "!!"}, headers=YH)
    assert bad.status_code == 422


async def test_deregister(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    code = (await register(client, 60))["uscc"]
    r = await client.post(f"/api/v1/enterprises/{code}/deregister", json={"reason": "企业注销登记"}, headers=YH)
    assert r.status_code == 200 and r.json()["status"] == "deregistered" and r.json()["version"] == 2
    r = await client.post(f"/api/v1/enterprises/{code}/deregister", json={"reason": "再次注销"}, headers=YH)
    assert r.status_code == 409
    payload = await scalar(
        clean, "SELECT payload FROM registry.outbox WHERE type = 'zjtx.registry.enterprise.deregistered.v1'"
    )
    assert payload == {"uscc": code, "region_code": YUHANG, "reason": "企业注销登记", "version": 2}


async def test_regions(client: httpx.AsyncClient) -> None:
    tree = (await client.get("/api/v1/regions", headers=YH)).json()
    root = tree["root"]
    assert root["code"] == "330000" and len(root["children"]) == 11
    counties = [c for city in root["children"] for c in city["children"]]
    assert len([c for c in counties if not c["is_zone"]]) == 90
    assert any(c["code"] == ZONE and c["is_zone"] for c in counties)
    assert all(c["status"] == "active" for c in counties)
    one = (await client.get("/api/v1/regions/330181", headers=YH)).json()
    assert one["status"] == "retired" and one["successor_code"] == XIAOSHAN
    ls = (await client.get("/api/v1/regions/331100", headers=YH)).json()
    assert len(ls["children"]) == 10
    assert (await client.get("/api/v1/regions/339999", headers=YH)).status_code == 404
    assert (await client.get("/api/v1/regions")).status_code == 401

"""Inputs refused or normalised as the rules say (issue 15 item 8, registry parts)."""

from __future__ import annotations

import httpx

from tests.registry.helpers import XIAOSHAN, YH, YUHANG, enterprise, register, uscc


async def test_liaison_email_is_validated(client: httpx.AsyncClient) -> None:
    body = enterprise(801, liaison={"name": "王伟", "mobile": "13812345678", "email": "not-an-email"})
    r = await client.post("/api/v1/enterprises", json=body, headers=YH)
    assert r.status_code == 422, r.text
    [err] = r.json()["errors"]
    assert err["field"] == "liaison.email" and "邮箱格式不正确" in err["message"]
    ok = await register(client, 802, liaison={"name": "王伟", "mobile": "13812345678", "email": "wang@example.cn"})
    assert ok["liaison"]["email"] == "wang@example.cn"
    r = await client.patch(
        f"/api/v1/enterprises/{ok['uscc']}",
        json={"liaison": {"name": "王伟", "mobile": "13812345678", "email": "a@b"}},
        headers={**YH, "If-Match": '"v1"'},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "liaison.email"


async def test_local_indicators_are_bounded(client: httpx.AsyncClient) -> None:
    code = (await register(client, 811))["uscc"]
    url = f"/api/v1/enterprises/{code}/indicators/2025"
    many = {f"ZJ{i:05d}": i for i in range(51)}
    r = await client.put(url, json={"indicators": {"local_indicators": many}}, headers=YH)
    assert r.status_code == 422, r.text
    [err] = r.json()["errors"]
    assert err["field"] == "indicators.local_indicators" and "最多 50 项" in err["message"]
    big = {f"ZJ{i:02d}": "特" * 400 for i in range(20)}  # 20 keys, ~24 KB
    r = await client.put(url, json={"indicators": {"local_indicators": big}}, headers=YH)
    assert r.status_code == 422 and "16 KB" in r.json()["errors"][0]["message"], r.text
    r = await client.put(url, json={"indicators": {"local_indicators": {"ZJ001": "1.5"}}}, headers=YH)
    assert r.status_code == 200, r.text


async def test_uscc_authority_other_than_region_is_warned(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/enterprises", json={**enterprise(821), "uscc": uscc(821, XIAOSHAN)}, headers=YH
    )
    assert r.status_code == 201, r.text
    assert any(XIAOSHAN in w and YUHANG in w and "不一致" in w for w in r.json()["warnings"]), r.json()["warnings"]
    same = await register(client, 822)
    assert not any("不一致" in w for w in same["warnings"])
    city = await client.post("/api/v1/enterprises", json={**enterprise(823), "uscc": uscc(823, "330100")}, headers=YH)
    assert city.status_code == 201 and not any("不一致" in w for w in city.json()["warnings"])


async def test_industry_code_with_section_letter(client: httpx.AsyncClient) -> None:
    out = await register(client, 831, industry_code="C3484")
    assert out["industry_code"] == "3484" and out["is_manufacturing"] is True
    r = await client.post("/api/v1/enterprises", json=enterprise(832, industry_code="A3484"), headers=YH)
    assert r.status_code == 422
    [err] = r.json()["errors"]
    assert err["field"] == "industry_code" and "门类" in err["message"] and "C" in err["message"]

"""Cultivation pools (entry, exit, published lists, events) and target progress aggregated up the tree."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.events.handlers import on_recognised
from shared.db import make_session_factory
from shared.events.envelope import CloudEvent
from tests.registry.conftest import scalar
from tests.registry.helpers import HZ_CITY, LD, LIANDU, LS_CITY, PROVINCE, XIAOSHAN, YH, YUHANG, ZONE, register


async def test_pool_entry_exit_and_published_list(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    a = (await register(client, 1))["uscc"]
    b = (await register(client, 2))["uscc"]
    url = f"/api/v1/pools/county/{YUHANG}/members"
    r = await client.post(url, json={"uscc": a, "track": "srdi", "year": 2024, "basis": "nomination"}, headers=YH)
    assert r.status_code == 201, r.text
    r = await client.post(
        url,
        json={"uscc": b, "track": "srdi", "year": 2025, "basis": "rule_result", "reason": "评价结果 E-1"},
        headers=YH,
    )
    assert r.status_code == 201
    assert (
        await client.post(url, json={"uscc": a, "track": "srdi", "year": 2025, "basis": "nomination"}, headers=YH)
    ).status_code == 409
    # a county cannot write another county's pool, and the pool level must match the region
    assert (
        await client.post(
            f"/api/v1/pools/county/{XIAOSHAN}/members",
            json={"uscc": a, "track": "srdi", "year": 2025, "basis": "nomination"},
            headers=YH,
        )
    ).status_code == 404
    assert (
        await client.post(
            "/api/v1/pools/city/330110/members",
            json={"uscc": a, "track": "srdi", "year": 2025, "basis": "nomination"},
            headers=YH,
        )
    ).status_code == 422
    ent = (await client.get(f"/api/v1/enterprises/{a}", headers=YH)).json()
    assert [(p["level"], p["track"], p["pool_region"]) for p in ent["pools"]] == [("county", "srdi", YUHANG)]
    listed = (await client.get(f"/api/v1/pools/county/{YUHANG}", headers=YH)).json()
    assert {m["uscc"] for m in listed["members"]} == {a, b}
    assert listed["pools"][0]["name"] == "县(市、区)级专精特新中小企业培育库"
    y2024 = (await client.get(f"/api/v1/pools/county/{YUHANG}", params={"year": 2024}, headers=HZ_CITY)).json()
    assert [m["uscc"] for m in y2024["members"]] == [a]
    r = await client.post(f"{url}/{a}/exit", json={"track": "srdi", "reason": "连续两年未报送数据"}, headers=YH)
    assert r.status_code == 200 and r.json()["exit_reason"] == "连续两年未报送数据"
    assert (
        await client.post(f"{url}/{a}/exit", json={"track": "srdi", "reason": "重复"}, headers=YH)
    ).status_code == 404
    now = (await client.get(f"/api/v1/pools/county/{YUHANG}", headers=YH)).json()
    assert [m["uscc"] for m in now["members"]] == [b]
    hist = (await client.get(f"/api/v1/enterprises/{a}/pools", headers=YH)).json()
    assert len(hist) == 1 and hist[0]["exited_on"] is not None
    types = await scalar(clean, "SELECT array_agg(type ORDER BY seq) FROM registry.outbox WHERE type LIKE '%pool%'")
    assert types == ["zjtx.registry.pool.entered.v1"] * 2 + ["zjtx.registry.pool.exited.v1"]
    exited = await scalar(clean, "SELECT payload FROM registry.outbox WHERE type = 'zjtx.registry.pool.exited.v1'")
    assert exited["uscc"] == a and exited["level"] == "county" and exited["track"] == "srdi" and exited["year"] == 2024
    filtered = (await client.get("/api/v1/enterprises", params={"pool": "county:srdi"}, headers=YH)).json()["items"]
    assert [e["uscc"] for e in filtered] == [b]
    assert (await client.get(f"/api/v1/pools/county/{LIANDU}", headers=YH)).status_code == 404


async def test_target_progress_aggregates_up(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    for region, tgt in ((LIANDU, 80), (ZONE, 80), ("331181", 110)):
        r = await client.put(
            "/api/v1/targets",
            json={
                "region_code": region,
                "track": "srdi",
                "measure": "pool",
                "level": "province",
                "year": 2020,
                "target": tgt,
            },
            headers=PROVINCE,
        )
        assert r.status_code == 200, r.text
    r = await client.put(
        "/api/v1/targets",
        json={
            "region_code": "331100",
            "track": "srdi",
            "measure": "pool",
            "level": "province",
            "year": 2020,
            "target": 900,
        },
        headers=LS_CITY,
    )
    assert r.status_code == 200
    assert (
        await client.put(
            "/api/v1/targets",
            json={
                "region_code": YUHANG,
                "track": "srdi",
                "measure": "pool",
                "level": "province",
                "year": 2020,
                "target": 1,
            },
            headers=LD,
        )
    ).status_code == 403
    members = []
    for n, region in ((1, LIANDU), (2, LIANDU), (3, ZONE)):
        members.append((await register(client, n, region, headers=LS_CITY))["uscc"])
    for code in members:
        r = await client.post(
            "/api/v1/pools/province/330000/members",
            json={"uscc": code, "track": "srdi", "year": 2019, "basis": "nomination"},
            headers=PROVINCE,
        )
        assert r.status_code == 201, r.text
    # a recognised title (read model) counts for recognised targets
    factory = make_session_factory(clean)
    async with factory() as s, s.begin():
        await on_recognised(
            s,
            CloudEvent(
                id="e1",
                source="/zjtx/evaluation",
                type="zjtx.evaluation.tier.recognised.v1",
                subject=members[0],
                data={
                    "recognition_id": "r1",
                    "uscc": members[0],
                    "region_code": LIANDU,
                    "tier": "srdi",
                    "level": "province",
                    "valid_from": "2020-03-01",
                    "valid_to": "2023-02-28",
                },
            ),
        )
    await client.put(
        "/api/v1/targets",
        json={
            "region_code": "331100",
            "track": "srdi",
            "measure": "recognised",
            "level": "province",
            "year": 2020,
            "target": 50,
        },
        headers=PROVINCE,
    )
    prov = (await client.get("/api/v1/targets/progress", params={"year": 2020}, headers=PROVINCE)).json()
    assert prov["as_of"] == "2020-12-31"
    assert len(prov["children"]) == 11
    lishui = next(c for c in prov["children"] if c["region_code"] == "331100")
    pool_row = next(r for r in lishui["rows"] if r["measure"] == "pool")
    assert pool_row == {
        "track": "srdi",
        "measure": "pool",
        "level": "province",
        "target": 900,
        "children_target": 270,
        "actual": 3,
        "completion_pct": "0.33",
    }
    rec_row = next(r for r in lishui["rows"] if r["measure"] == "recognised")
    assert rec_row["actual"] == 1 and rec_row["target"] == 50
    top = next(r for r in prov["region"]["rows"] if r["measure"] == "pool")
    assert top["target"] is None and top["children_target"] == 900 and top["actual"] == 3
    city = (
        await client.get("/api/v1/targets/progress", params={"year": 2020, "region": "331100"}, headers=LS_CITY)
    ).json()
    by_unit = {c["region_code"]: c for c in city["children"]}
    assert len(by_unit) == 10
    assert next(r for r in by_unit[LIANDU]["rows"] if r["measure"] == "pool")["actual"] == 2
    assert next(r for r in by_unit[ZONE]["rows"] if r["measure"] == "pool")["actual"] == 1
    assert next(r for r in by_unit["331181"]["rows"] if r["measure"] == "pool")["actual"] == 0
    assert (
        await client.get("/api/v1/targets/progress", params={"year": 2020, "region": "331100"}, headers=YH)
    ).status_code == 404
    # the 2018 cohort: nobody yet (entries are 2019)
    y2018 = (
        await client.get("/api/v1/targets/progress", params={"year": 2018, "region": "331100"}, headers=LS_CITY)
    ).json()
    assert y2018["region"]["rows"] == []
    _ = XIAOSHAN


async def test_setting_a_target_publishes_it(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    """The monitor's attainment reads targets from registry's events (it never reads registry's tables)."""
    body = {"region_code": LIANDU, "track": "srdi", "measure": "pool", "level": "province", "year": 2020,
            "target": 80, "source": "丽政办发〔2018〕61号"}
    assert (await client.put("/api/v1/targets", json=body, headers=PROVINCE)).status_code == 200
    assert (await client.put("/api/v1/targets", json={**body, "target": 95}, headers=PROVINCE)).status_code == 200
    payloads = await scalar(
        clean, "SELECT json_agg(payload ORDER BY seq) FROM registry.outbox WHERE type = 'zjtx.registry.target.set.v1'"
    )
    assert [p["target"] for p in payloads] == [80, 95]
    assert payloads[-1] == {**body, "target": 95}
    key = await scalar(clean, "SELECT key FROM registry.outbox WHERE type = 'zjtx.registry.target.set.v1' LIMIT 1")
    assert key == LIANDU

"""Issue 3 'done when', through the API alone: a county official registers enterprises one by one and from an
XLSX, records three years of indicators, sees them in the county pool; the province sees progress per county."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.demo import to_xlsx
from tests.harness import running_service, wait_for
from tests.registry.helpers import PROVINCE, XIAOSHAN, YH, YUHANG, register, uscc


async def test_county_flow_and_province_progress(clean: AsyncEngine) -> None:
    async with running_service("registry", consumer=True) as (_, client):
        first = (await register(client, 1))["uscc"]
        rows = [["统一社会信用代码", "企业名称", "所属区划", "行业代码", "成立日期"]] + [
            [uscc(n), f"余杭验收{n}号智能装备有限公司", YUHANG, "3562", "2016-01-01"] for n in (2, 3)
        ]
        r = await client.post(
            "/api/v1/imports",
            params={"kind": "enterprises", "mode": "all_or_nothing"},
            headers=YH,
            files={"file": ("登记.xlsx", to_xlsx(rows), "application/octet-stream")},
        )
        job_url = f"/api/v1/jobs/{r.json()['id']}"

        async def done() -> bool:
            return bool((await client.get(job_url, headers=YH)).json()["status"] == "done")

        await wait_for(done, timeout=20, what="import")
        members = [first, uscc(2), uscc(3)]
        for code in members:
            for year, revenue in ((2023, "20000000"), (2024, "24000000"), (2025, "30000000")):
                body = {"indicators": {"operating_revenue": revenue, "rd_expense": "1200000", "employees": 90}}
                r = await client.put(f"/api/v1/enterprises/{code}/indicators/{year}", json=body, headers=YH)
                assert r.status_code == 200, r.text
            r = await client.post(
                f"/api/v1/pools/county/{YUHANG}/members",
                json={"uscc": code, "track": "srdi", "year": 2025, "basis": "rule_result"},
                headers=YH,
            )
            assert r.status_code == 201
        history = (await client.get(f"/api/v1/enterprises/{uscc(2)}/indicators", headers=YH)).json()
        assert [h["year"] for h in history] == [2025, 2024, 2023]
        pool = (await client.get(f"/api/v1/pools/county/{YUHANG}", params={"year": 2025}, headers=YH)).json()
        assert {m["uscc"] for m in pool["members"]} == set(members)
        for region, target in ((YUHANG, 500), (XIAOSHAN, 1200)):
            r = await client.put(
                "/api/v1/targets",
                json={
                    "region_code": region,
                    "track": "srdi",
                    "measure": "pool",
                    "level": "county",
                    "year": 2025,
                    "target": target,
                },
                headers=PROVINCE,
            )
            assert r.status_code == 200
        prog: httpx.Response = await client.get(
            "/api/v1/targets/progress", params={"year": 2025, "region": "330100"}, headers=PROVINCE
        )
        by_county = {c["region_code"]: c["rows"][0] for c in prog.json()["children"]}
        assert by_county[YUHANG]["target"] == 500 and by_county[YUHANG]["actual"] == 3
        assert by_county[YUHANG]["completion_pct"] == "0.60"
        assert by_county[XIAOSHAN]["actual"] == 0
        assert prog.json()["region"]["rows"][0]["children_target"] == 1700

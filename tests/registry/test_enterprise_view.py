"""GET /enterprises/{uscc} passes through the JSON PostgreSQL writes in one statement (shared.db_reads): it must be
EnterpriseOut's, and equal to what the session path (the list, EnterpriseOut.model_dump) shows of the same data."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.api.schemas import EnterpriseOut
from services.registry.events.handlers import on_recognised
from shared.db import make_session_factory
from shared.events.envelope import CloudEvent
from tests.registry.helpers import XS, YH, YUHANG, register


async def test_detail_json_is_the_models(client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    created = await register(client, 960, liaison={"name": "王伟", "mobile": "13812345678", "email": "w@x.cn"})
    code = created["uscc"]
    factory = make_session_factory(clean)
    async with factory() as s, s.begin():
        for i, (tier, since) in enumerate((("srdi", "2025-02-01"), ("innovative", "2024-01-01"))):
            await on_recognised(s, CloudEvent(
                id=f"v{i}", source="/zjtx/evaluation", type="zjtx.evaluation.tier.recognised.v1", subject=code,
                data={"recognition_id": f"rv{i}", "uscc": code, "region_code": YUHANG, "tier": tier,
                      "level": "county", "valid_from": since, "valid_to": "2099-12-31"},
            ))
    for track in ("srdi", "innovative"):
        r = await client.post(f"/api/v1/pools/county/{YUHANG}/members",
                              json={"uscc": code, "track": track, "year": 2025, "basis": "nomination"}, headers=YH)
        assert r.status_code == 201
    r = await client.get(f"/api/v1/enterprises/{code.lower()}", headers=YH)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["ETag"] == '"v1"'
    body = r.json()
    assert EnterpriseOut.model_validate_json(r.content).model_dump(mode="json") == body
    assert [t["tier"] for t in body["current_tiers"]] == ["innovative", "srdi"]  # by valid_from
    assert [p["track"] for p in body["pools"]] == ["srdi", "innovative"] and body["region_name"] == "余杭区"
    assert {k: v for k, v in body.items() if k not in ("current_tiers", "pools")} == {
        k: v for k, v in created.items() if k not in ("current_tiers", "pools")
    }
    assert (await client.get(f"/api/v1/enterprises/{code}", headers=XS)).status_code == 404
    # the list shows the same enterprise the same way
    listed = (await client.get("/api/v1/enterprises", params={"q": code}, headers=YH)).json()["items"]
    assert listed == [body]

"""Shared test data for registry tests."""

from __future__ import annotations

from typing import Any

from services.registry.domain.uscc import make_uscc
from tests.harness import auth

YUHANG, XIAOSHAN, LIANDU, ZONE = "330110", "330109", "331102", "331199"

PROVINCE = auth("province_official", "330000")
HZ_CITY = auth("city_official", "330100")
LS_CITY = auth("city_official", "331100")
YH = auth("county_official", YUHANG)
XS = auth("county_official", XIAOSHAN)
LD = auth("county_official", LIANDU)


def uscc(n: int, division: str = YUHANG) -> str:
    return make_uscc(division, f"MA{n:06d}")


def enterprise(n: int, region: str = YUHANG, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uscc": uscc(n, region if region != ZONE else "331100"),
        "name": f"杭州测试精密机械{n}号有限公司",
        "region_code": region,
        "industry_code": "3484",
        "founded_on": "2012-05-01",
        "employees": 120,
        "operating_revenue": "35000000.00",
        "liaison": {"name": "王伟", "mobile": "13812345678"},
    }
    body.update(extra)
    return body


async def register(
    client: Any, n: int, region: str = YUHANG, headers: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    hdrs = headers or {YUHANG: YH, XIAOSHAN: XS, LIANDU: LD}.get(region, PROVINCE)
    r = await client.post("/api/v1/enterprises", json=enterprise(n, region, **extra), headers=hdrs)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def ent_auth(code: str) -> dict[str, str]:
    return auth("enterprise", YUHANG, uscc=code)

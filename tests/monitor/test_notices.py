"""Notices sent (notification's ``notice.sent``) in the monitor: a read model by region, kind, tier, year and
commissioner, the ``/api/v1/monitor/notices`` report within the caller's jurisdiction, the region page's table and
the annual workbook's sheets, whose figures equal the API's (read back from the file)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notification.events.contracts import NOTICE_SENT, NoticeSent
from shared.events.envelope import CloudEvent
from tests.harness import auth, running_service
from tests.monitor import programme as p
from tests.monitor.conftest import apply, event

CITY = auth("city_official", p.LISHUI)
PROVINCE = auth("province_official", "330000")


def notice(nid: int, uscc: str | None, region: str, kind: str, recipient: str = "enterprise", *,
           tier: str | None = None, commissioner: str | None = None, channels: list[str] | None = None,
           year: int = p.YEAR) -> CloudEvent:
    """A notice.sent as notification publishes it (built and checked by its producer model)."""
    payload = NoticeSent(notice_id=nid, uscc=uscc, region_code=region, kind=kind, kind_name=KIND_NAMES[kind],
                         recipient_kind=recipient, commissioner_id=commissioner, tier=tier,  # type: ignore[arg-type]
                         tier_name="专精特新中小企业" if tier else None, channels=channels or [], year=year,
                         occurred_at=datetime(year, 5, 1, 9, tzinfo=UTC))
    return event(NOTICE_SENT, uscc or region, region, payload.model_dump(mode="json"))


KIND_NAMES = {"gap_advice": "梯度培育差距提示", "gap_advice_commissioner": "服务企业接近达标",
              "tier_recognised": "认定通知", "policy_push": "政策推送"}


def notices() -> list[CloudEvent]:
    return [
        notice(1, p.A[1], p.LIANDU, "gap_advice", tier="srdi"),
        notice(2, p.A[2], p.LIANDU, "gap_advice", tier="srdi", channels=["sms"]),
        notice(3, p.A[1], p.LIANDU, "gap_advice_commissioner", "commissioner", tier="srdi", commissioner="k1"),
        notice(4, p.A[6], p.LIANDU, "tier_recognised", tier="srdi", channels=["sms", "email"]),
        notice(5, p.B[1], p.QINGTIAN, "policy_push"),
        notice(6, p.C[1], p.YUHANG, "gap_advice", tier="srdi"),
        notice(7, p.A[3], p.LIANDU, "gap_advice", tier="srdi", year=2025),  # another year
        notice(1, p.A[1], p.LIANDU, "gap_advice", tier="srdi"),  # the same notice again (a replay): once
    ]


@pytest.fixture
async def api(clean: AsyncEngine) -> httpx.AsyncClient:
    await apply(clean, [*p.events(), *notices()])
    async with running_service("monitor") as (_, client):
        yield client


def _region(body: dict[str, Any], code: str) -> dict[str, Any]:
    return next(r for r in [body["total"], *body["rows"]] if r["region"]["code"] == code)


async def test_notices_by_region_kind_and_commissioner(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/v1/monitor/notices", params={"year": p.YEAR}, headers=CITY)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: _region(body, p.LISHUI)[k] for k in ("total", "to_enterprises", "gap_advice")} == {
        "total": 5, "to_enterprises": 4, "gap_advice": 2}
    assert {k: _region(body, p.LIANDU)[k] for k in ("total", "to_enterprises", "gap_advice")} == {
        "total": 4, "to_enterprises": 3, "gap_advice": 2}
    assert _region(body, p.QINGTIAN)["total"] == 1
    kinds = {(k["kind"], k["tier"]): (k["to_enterprises"], k["to_commissioners"], k["sent_out"], k["total"])
             for k in body["by_kind"]}
    assert kinds == {("gap_advice", "srdi"): (2, 0, 1, 2), ("gap_advice_commissioner", "srdi"): (0, 1, 0, 1),
                     ("policy_push", None): (1, 0, 0, 1), ("tier_recognised", "srdi"): (1, 0, 1, 1)}
    assert body["commissioners"] == [{"commissioner_id": "k1", "notices": 1}]
    prov = (await api.get("/api/v1/monitor/notices", params={"year": p.YEAR}, headers=PROVINCE)).json()
    assert _region(prov, "330000")["total"] == 6 and _region(prov, "330100")["gap_advice"] == 1
    last = (await api.get("/api/v1/monitor/notices", params={"year": 2025}, headers=CITY)).json()
    assert _region(last, p.LISHUI)["gap_advice"] == 1
    # within the caller's jurisdiction only
    yuhang = auth("county_official", p.YUHANG)
    assert (await api.get("/api/v1/monitor/notices", params={"year": p.YEAR, "region": p.LIANDU},
                          headers=yuhang)).status_code == 404
    own = (await api.get("/api/v1/monitor/notices", params={"year": p.YEAR}, headers=yuhang)).json()
    assert own["total"]["total"] == 1 and own["by_kind"][0]["kind"] == "gap_advice"


async def test_annual_report_and_page_show_the_api_figures(api: httpx.AsyncClient) -> None:
    body = (await api.get("/api/v1/monitor/notices", params={"year": p.YEAR}, headers=CITY)).json()
    r = await api.get("/api/v1/monitor/reports/annual", params={"year": p.YEAR}, headers=CITY)
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames[-2:] == ["通知发送", "通知类别"]
    by_region = [list(x) for x in wb["通知发送"].iter_rows(min_row=2, values_only=True)]
    assert by_region[0] == ["区划代码", "区划名称", "通知总数", "发给企业", "差距提示"]
    assert by_region[1:] == [[x["region"]["code"], x["region"]["name"], x["total"], x["to_enterprises"],
                              x["gap_advice"]] for x in [body["total"], *body["rows"]]]
    by_kind = [list(x) for x in wb["通知类别"].iter_rows(min_row=3, values_only=True)]
    assert by_kind == [[k["kind_name"], k["tier_name"] or None, k["to_enterprises"], k["to_commissioners"],
                        k["to_officials"], k["sent_out"], k["total"]] for k in body["by_kind"]]
    assert ["梯度培育差距提示", "专精特新中小企业", 2, 0, 0, 1, 2] in by_kind

    api.cookies.set("zjtx_token", CITY["Authorization"].removeprefix("Bearer "))
    page = await api.get(f"/monitor/regions/{p.LISHUI}", params={"year": p.YEAR})
    assert page.status_code == 200, page.text
    assert 'id="table-notices"' in page.text and "梯度培育差距提示" in page.text

"""Commissioner directory, assignment rules on the DB, reassignment, and access control."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.notification.db.models import backbone, notices
from services.notification.demo import demo_commissioners, load_demo
from services.notification.fake_providers import Mailbox
from tests.harness import auth, running_service, settings
from tests.notification.conftest import apply, event, recognised, registered, uscc

YH = auth("county_official", "330110")
XS = auth("county_official", "330109")
HZ = auth("city_official", "330100")


@pytest.fixture
async def api(clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]]) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service("notification", **providers[1]) as (_, client):
        yield client


async def mk(client: httpx.AsyncClient, cid: str, region: str, level: str, headers: dict[str, str],
             capacity: int = 5) -> httpx.Response:
    return await client.post("/api/v1/commissioners", headers=headers, json={
        "id": cid, "name": f"专员{cid}", "mobile": "13700000000", "email": f"{cid}@gov.example.cn",
        "region": region, "level": level, "capacity": capacity})


async def test_commissioner_directory_jurisdiction(api: httpx.AsyncClient) -> None:
    assert (await mk(api, "cm-a", "330110", "county", YH)).status_code == 201
    assert (await mk(api, "cm-b", "330109", "county", XS)).status_code == 201
    assert (await mk(api, "cm-c", "330100", "city", HZ)).status_code == 201
    assert (await mk(api, "cm-a", "330110", "county", YH)).status_code == 409
    bad = await mk(api, "cm-d", "330110", "city", YH)  # a city commissioner needs a city code
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "region"
    assert (await mk(api, "cm-e", "330109", "county", YH)).status_code == 403  # outside jurisdiction
    extra = await api.post("/api/v1/commissioners", headers=YH, json={
        "name": "x", "mobile": "13700000000", "region": "330110", "level": "county", "load": 3})
    assert extra.status_code == 422
    assert [c["id"] for c in (await api.get("/api/v1/commissioners", headers=YH)).json()] == ["cm-a"]
    assert {c["id"] for c in (await api.get("/api/v1/commissioners", headers=HZ)).json()} == {"cm-a", "cm-b", "cm-c"}
    assert (await api.get("/api/v1/commissioners/cm-b", headers=YH)).status_code == 404
    assert (await api.patch("/api/v1/commissioners/cm-b", headers=YH, json={"capacity": 9})).status_code == 404
    assert (await api.get("/api/v1/commissioners",
                          headers=auth("enterprise", "330110", uscc=uscc()))).status_code == 403
    me = await api.get("/api/v1/commissioners/cm-a", headers=auth("commissioner", "330110", sub="cm-a"))
    assert me.status_code == 200 and me.json()["load"] == 0
    assert (await api.get("/api/v1/commissioners/cm-b",
                          headers=auth("commissioner", "330110", sub="cm-a"))).status_code == 404


async def test_least_loaded_deactivation_and_manual_reassignment(
    api: httpx.AsyncClient, sf: async_sessionmaker[AsyncSession]
) -> None:
    await mk(api, "cm-1", "330110", "county", YH, capacity=2)
    await mk(api, "cm-2", "330110", "county", YH, capacity=2)
    await mk(api, "cm-c", "330100", "city", HZ)
    a, b, c = uscc(), uscc(), uscc()
    for u in (a, b, c):
        await apply(sf, recognised(u, "330110", "srdi"))
    served = {cid: [e["uscc"] for e in (await api.get(f"/api/v1/commissioners/{cid}/enterprises", headers=YH)).json()]
              for cid in ("cm-1", "cm-2")}
    assert sorted(len(v) for v in served.values()) == [1, 2]  # least-loaded: 1 then 2 then 1
    assert set(served["cm-1"]) | set(served["cm-2"]) == {a, b, c}

    # deactivating cm-1 moves its enterprises to cm-2 while it has room, the rest raises an alert
    r = await api.patch("/api/v1/commissioners/cm-1", headers=YH, json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["load"] == 0
    after = [e["uscc"] for e in (await api.get("/api/v1/commissioners/cm-2/enterprises", headers=YH)).json()]
    assert len(after) == 2
    gap = ({a, b, c} - set(after)).pop()
    view = (await api.get(f"/api/v1/enterprises/{gap}/commissioner", headers=YH)).json()
    assert view["status"] == "unassigned"
    alert = (await api.get("/api/v1/notifications", headers=YH)).json()["items"]
    assert [i["template_code"] for i in alert] == ["commissioner_unavailable"]

    # more capacity fills the gap
    r = await api.patch("/api/v1/commissioners/cm-2", headers=YH, json={"capacity": 3})
    assert r.json()["load"] == 3

    # manual reassignment: by an official of the jurisdiction, to a commissioner of the right level and region
    await mk(api, "cm-3", "330110", "county", YH)
    wrong_level = await api.post(f"/api/v1/enterprises/{a}/commissioner", headers=YH,
                                 json={"commissioner_id": "cm-c", "reason": "就近服务"})
    assert wrong_level.status_code == 404  # a county official does not see the city's commissioner
    wrong_level = await api.post(f"/api/v1/enterprises/{a}/commissioner", headers=HZ,
                                 json={"commissioner_id": "cm-c", "reason": "就近服务"})
    assert wrong_level.status_code == 422
    outside = await api.post(f"/api/v1/enterprises/{a}/commissioner", headers=XS,
                             json={"commissioner_id": "cm-3", "reason": "就近服务"})
    assert outside.status_code == 404
    ok = await api.post(f"/api/v1/enterprises/{a}/commissioner", headers=YH,
                        json={"commissioner_id": "cm-3", "reason": "就近服务"})
    assert ok.status_code == 200 and ok.json()["commissioner"]["id"] == "cm-3"
    assert ok.json()["history"][0]["reason"] == "人工调整:就近服务"
    assert ok.json()["history"][0]["actor"] == "county_official:330110"
    async with sf() as s:
        types = (await s.execute(select(backbone.outbox.c.type).where(backbone.outbox.c.key == a))).scalars().all()
    assert types.count("zjtx.notification.commissioner.assigned.v1") >= 2


async def test_revocation_and_expiry_recompute_from_remaining_tiers(
    api: httpx.AsyncClient, sf: async_sessionmaker[AsyncSession]
) -> None:
    await mk(api, "cm-y", "330110", "county", YH)
    await mk(api, "cm-h", "330100", "city", HZ)
    u = uscc()
    await apply(sf, recognised(u, "330110", "srdi", rid="r-srdi"))
    await apply(sf, recognised(u, "330110", "hidden_champion", rid="r-hc", level="province"))
    view = (await api.get(f"/api/v1/enterprises/{u}/commissioner", headers=YH)).json()
    assert view["commissioner"]["id"] == "cm-h"
    await apply(sf, event("zjtx.evaluation.tier.revoked.v1", u, {
        "recognition_id": "r-hc", "uscc": u, "region_code": "330110", "tier": "hidden_champion",
        "level": "province", "ground": "数据造假", "revoked_on": "2026-11-20", "ban_until": None}, "330110"))
    view = (await api.get(f"/api/v1/enterprises/{u}/commissioner", headers=YH)).json()
    assert view["commissioner"]["id"] == "cm-y" and view["level"] == "county"
    await apply(sf, event("zjtx.evaluation.tier.expired.v1", u, {
        "recognition_id": "r-srdi", "uscc": u, "region_code": "330110", "tier": "srdi", "level": "province",
        "expired_on": "2029-12-31"}, "330110"))
    view = (await api.get(f"/api/v1/enterprises/{u}/commissioner", headers=YH)).json()
    assert view["status"] == "none" and view["commissioner"] is None
    assert view["history"][0]["commissioner_id"] is None and "到期" in view["history"][0]["reason"]
    # the released commissioner was told, the officials saw the revocation
    cm_inbox = (await api.get("/api/v1/notifications", headers=auth("commissioner", "330110", sub="cm-y"))).json()
    assert "commissioner_released" in [i["template_code"] for i in cm_inbox["items"]]
    # …and the other services learn of the release (registry withdraws the commissioner's read access)
    async with sf() as s:
        released = (
            await s.execute(
                select(backbone.outbox.c.payload).where(
                    backbone.outbox.c.key == u, backbone.outbox.c.type == "zjtx.notification.commissioner.released.v1"
                )
            )
        ).scalars().all()
    assert len(released) == 1
    expected = {"uscc": u, "region_code": "330110", "commissioner_id": "cm-y"}
    assert {k: released[0][k] for k in expected} == expected and released[0]["reason"]
    official = (await api.get("/api/v1/notifications", headers=YH)).json()["items"]
    assert [i["template_code"] for i in official] == ["tier_revoked"]


async def test_inbox_access_control(api: httpx.AsyncClient, sf: async_sessionmaker[AsyncSession]) -> None:
    a, b = uscc(), uscc()
    for u in (a, b):
        await apply(sf, registered(u, "330110", f"企业{u[-4:]}", None, None))
        await apply(sf, event("zjtx.evaluation.publicity.started.v1", u, {
            "application_id": "app", "uscc": u, "region_code": "330110", "tier": "srdi",
            "starts_on": "2026-11-20", "ends_on": "2026-11-27"}, "330110"))
    ha, hb = auth("enterprise", "330110", uscc=a), auth("enterprise", "330110", uscc=b)
    items_a = (await api.get("/api/v1/notifications", headers=ha)).json()["items"]
    assert len(items_a) == 1 and items_a[0]["uscc"] == a and "公示" in items_a[0]["body"]
    nid = items_a[0]["id"]
    assert (await api.post(f"/api/v1/notifications/{nid}/read", headers=hb)).status_code == 404
    assert (await api.post(f"/api/v1/notifications/{nid}/read",
                           headers=auth("county_official", "330110"))).status_code == 404
    assert (await api.get("/api/v1/notifications/unread-count", headers=ha)).json() == {"unread": 1}
    assert (await api.post(f"/api/v1/notifications/{nid}/read", headers=ha)).json() == {"unread": 0}
    assert (await api.get("/api/v1/notifications?unread=true", headers=ha)).json()["items"] == []
    assert len((await api.get("/api/v1/notifications", headers=ha)).json()["items"]) == 1
    assert (await api.get("/api/v1/notifications", headers=auth("agency", "330000"))).status_code == 403
    assert (await api.get("/api/v1/notifications")).status_code == 401
    # an enterprise sees its own commissioner view only
    assert (await api.get(f"/api/v1/enterprises/{b}/commissioner", headers=ha)).status_code == 404
    assert (await api.get(f"/api/v1/enterprises/{a}/commissioner", headers=ha)).status_code == 200
    assert (await api.get(f"/api/v1/enterprises/{a}/commissioner", headers=XS)).status_code == 404


async def test_inbox_cursor_pagination(api: httpx.AsyncClient, sf: async_sessionmaker[AsyncSession]) -> None:
    u = uscc()
    for i in range(5):
        await apply(sf, event("zjtx.finance.entitlement.approved.v1", u, {
            "entitlement_id": f"e{i}", "uscc": u, "region_code": "330110", "jurisdiction": "330100",
            "policy_id": "p", "policy_name": "小巨人奖励", "kind": "reward", "amount": "2000000.00", "year": 2026},
            "330110"))
    h = auth("enterprise", "330110", uscc=u)
    page1 = (await api.get("/api/v1/notifications?limit=3", headers=h)).json()
    page2 = (await api.get(f"/api/v1/notifications?limit=3&cursor={page1['next_cursor']}", headers=h)).json()
    ids = [i["id"] for i in page1["items"] + page2["items"]]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True) and page2["next_cursor"] is None
    assert "2000000.00 元" in page1["items"][0]["body"]


async def test_inbox_page_is_one_statement(
    clean: Mailbox, engine: AsyncEngine, sf: async_sessionmaker[AsyncSession]
) -> None:
    """The hot read: a page of notices with their SMS/e-mail states in one statement, whatever the page size."""
    from sqlalchemy import event as sa_event

    from services.notification.app import inbox
    from shared.auth import Principal, Role

    u = uscc()
    await apply(sf, registered(u, "330110", "余杭一查科技有限公司", "13900000222", "one@example.cn"))
    for i in range(4):
        await apply(sf, event("zjtx.finance.entitlement.approved.v1", u, {
            "entitlement_id": f"e{i}", "uscc": u, "region_code": "330110", "policy_name": "奖励",
            "amount": "1.00"}, "330110"))
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    sa_event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        async with sf() as s, s.begin():
            statements.clear()
            page = await inbox.page(s, Principal(sub="e", role=Role.ENTERPRISE, region="330110", uscc=u),
                                    unread=None, cursor=None, limit=3)
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert len([q for q in statements if q.lstrip().upper().startswith("SELECT")]) == 1, statements
    assert len(page["items"]) == 3 and page["next_cursor"] == page["items"][-1]["id"]
    assert [[d["channel"] for d in i["deliveries"]] for i in page["items"]] == [["email", "sms"]] * 3


async def test_demo_is_idempotent(clean: Mailbox, sf: async_sessionmaker[AsyncSession]) -> None:
    await load_demo(settings("notification"), 100)
    await load_demo(settings("notification"), 100)
    from services.notification.db.models import commissioners

    async with sf() as s:
        rows = (await s.execute(select(commissioners.c.region, commissioners.c.level))).all()
    assert len(rows) == len(demo_commissioners(100))
    assert {("330110", "county"), ("330109", "county"), ("330100", "city"), ("331100", "city"),
            ("331181", "county")} <= set(rows)
    async with sf() as s:
        assert (await s.execute(select(notices.c.id))).first() is None


async def test_deregistration_releases_the_commissioner(
    api: httpx.AsyncClient, sf: async_sessionmaker[AsyncSession]
) -> None:
    await mk(api, "cm-z", "330110", "county", YH)
    u = uscc()
    await apply(sf, recognised(u, "330110", "srdi"))
    assert (await api.get("/api/v1/commissioners/cm-z", headers=YH)).json()["load"] == 1
    await apply(sf, event("zjtx.registry.enterprise.deregistered.v1", u, {
        "uscc": u, "region_code": "330110", "reason": "注销", "version": 3}, "330110"))
    assert (await api.get("/api/v1/commissioners/cm-z", headers=YH)).json()["load"] == 0
    view = (await api.get(f"/api/v1/enterprises/{u}/commissioner", headers=YH)).json()
    assert view["status"] == "none" and view["history"][0]["reason"] == "企业已注销"

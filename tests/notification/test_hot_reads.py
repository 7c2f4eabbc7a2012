"""The 企业码 app's hot read of notification (GET /notifications) passes through the JSON PostgreSQL writes without a
session (shared.db_reads): for every inbox, filter, cursor and page size it must be what the session path
(inbox.page) gives, as NoticePage serialises it; only the caller's own inbox is read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notification.api.schemas import NoticePage
from services.notification.app import inbox
from services.notification.app.notices import commissioner_key, enterprise_key, official_key
from services.notification.db.models import deliveries, notices
from services.notification.fake_providers import Mailbox
from shared.auth import Principal, Role
from tests.harness import bearer, running_service
from tests.notification.conftest import uscc


async def _reference(sf: async_sessionmaker[AsyncSession], p: Principal, params: dict[str, Any]) -> dict[str, Any]:
    async with sf() as s:
        page = await inbox.page(s, p, unread=params.get("unread"), cursor=params.get("cursor"),
                                limit=params.get("limit", 50))
    return NoticePage.model_validate(page).model_dump(mode="json")


async def test_inbox_pages_equal_the_session_path(clean: Mailbox, sf: async_sessionmaker[AsyncSession]) -> None:
    u, other = uscc(), uscc()
    owners = {
        "enterprise": Principal(sub="e", role=Role.ENTERPRISE, region="330110", uscc=u),
        "other enterprise": Principal(sub="o", role=Role.ENTERPRISE, region="330110", uscc=other),
        "county 余杭": Principal(sub="c", role=Role.COUNTY, region="330110"),
        "commissioner": Principal(sub="cm-1", role=Role.COMMISSIONER, region="330110"),
        "city 杭州 (empty inbox)": Principal(sub="h", role=Role.CITY, region="330100"),
    }
    keys = [enterprise_key(u), enterprise_key(other), official_key("county_official", "330110"),
            commissioner_key("cm-1")]
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    async with sf() as s, s.begin():
        for i in range(13):
            key = keys[i % len(keys)] if i < 8 else keys[0]
            at = start + timedelta(hours=i, microseconds=0 if i % 3 else 1234 * i)
            nid = (await s.execute(insert(notices).values(
                dedup_key=f"d{i}", recipient=key, uscc=u if key != keys[1] else other, template_code=f"t{i % 3}",
                template_version=1 + i % 2, title=f"通知{i}", body=f"正文 “{i}”\n", urgent=i % 4 == 0, created_at=at,
                read_at=at + timedelta(minutes=5) if i % 2 else None,
            ).returning(notices.c.id))).scalar_one()
            for channel in ("sms", "email")[: i % 3]:
                await s.execute(insert(deliveries).values(
                    notice_id=nid, dedup_key=f"d{i}", recipient=key, channel=channel, address="x", status="sent"
                    if i % 2 else "pending", attempts=i % 3, sent_at=at + timedelta(seconds=7) if i % 2 else None))
    async with running_service("notification") as (_, client):
        compared = 0
        for who, p in owners.items():
            cursor_seen: list[int] = []
            for params in ({}, {"unread": True}, {"unread": False}, {"limit": 3}, {"limit": 3, "unread": True},
                           {"limit": 1}, {"limit": 200}):
                pages = 0
                while True:
                    r = await client.get("/api/v1/notifications", params=params, headers=bearer(p))
                    assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
                    fast = NoticePage.model_validate_json(r.content).model_dump(mode="json")
                    assert r.json() == fast == await _reference(sf, p, params), (who, params)
                    compared += len(fast["items"])
                    pages += 1
                    if fast["next_cursor"] is None:
                        break
                    cursor_seen.append(fast["next_cursor"])
                    params = {**params, "cursor": fast["next_cursor"]}
                assert pages <= 13
        assert compared > 40
        own = (await client.get("/api/v1/notifications", headers=bearer(owners["enterprise"]))).json()["items"]
        assert [n["id"] for n in own] == sorted((n["id"] for n in own), reverse=True) and len(own) == 7
        assert {len(n["deliveries"]) for n in own} == {0, 1, 2}
        stamps = [n["created_at"] for n in own]  # with microseconds and without
        assert any("." in t for t in stamps) and any("." not in t for t in stamps)
        for n in own:
            assert [d["channel"] for d in n["deliveries"]] == sorted(d["channel"] for d in n["deliveries"])
        agency = Principal(sub="ag", role=Role.AGENCY, region="330100")
        assert (await client.get("/api/v1/notifications", headers=bearer(agency))).status_code == 403

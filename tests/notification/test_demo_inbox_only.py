"""A demo load sends no SMS or e-mail: the notices caused by events carrying the demo correlation id
(``shared.demo.demo_events``) stay in the inbox, while the same notice of an ordinary event is delivered."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notification.db.models import enterprises
from services.notification.fake_providers import Mailbox
from tests.harness import auth, wait_for
from tests.notification.conftest import recognised, registered, uscc
from tests.notification.test_flow import produce, settled, stack  # noqa: F401 (fixture)


async def test_notices_of_demo_events_stay_in_the_inbox(
    stack: tuple[httpx.AsyncClient, Any, Mailbox], sf: async_sessionmaker[AsyncSession]  # noqa: F811
) -> None:
    client, producer, box = stack
    demo, real = uscc("330110"), uscc("330110")
    await produce(producer, registered(demo, "330110", "杭州演示科技有限公司", "13900000091", "demo91@example.cn"))
    await produce(producer, registered(real, "330110", "杭州真实科技有限公司", "13900000092", "real92@example.cn"))

    async def contacts_known() -> bool:  # (registry's and evaluation's topics are not ordered with each other)
        async with sf() as s:
            rows = (await s.execute(select(enterprises.c.uscc).where(enterprises.c.uscc.in_((demo, real))))).all()
        return len(rows) == 2
    await wait_for(contacts_known, what="both enterprises' contacts")
    marked = recognised(demo, "330110", "srdi").model_copy(update={"correlationid": "zjtx-demo:evaluation-history"})
    await produce(producer, marked)
    await produce(producer, recognised(real, "330110", "srdi"))

    async def both_notified() -> bool:
        for u in (demo, real):
            r = await client.get("/api/v1/notifications", headers=auth("enterprise", "330110", uscc=u))
            if not any(i["template_code"] == "tier_recognised" for i in r.json()["items"]):
                return False
        return True
    await wait_for(both_notified, what="title notices in both inboxes")
    await settled(box, sf, sms=1, emails=1)
    assert box.sms_to("13900000091") == [] and box.emails_to("demo91@example.cn") == []
    assert len(box.sms_to("13900000092")) == 1 and len(box.emails_to("real92@example.cn")) == 1
    items = (await client.get("/api/v1/notifications",
                              headers=auth("enterprise", "330110", uscc=demo))).json()["items"]
    assert [i["deliveries"] for i in items if i["template_code"] == "tier_recognised"] == [[]]

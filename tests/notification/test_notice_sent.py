"""``notice.sent``: every notice put in an inbox is published in the transaction that creates it (the monitor counts
notices sent from it), with what it is about — kind, tier, region, the recipient's kind, the channels queued — and
no contact data; a notice not created (a duplicate) publishes nothing."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notification.db.models import backbone, notices
from services.notification.events.contracts import NOTICE_SENT, NoticeSent
from services.notification.fake_providers import Mailbox
from tests.notification.conftest import apply, recognised, registered, uscc
from tests.notification.test_gap_advice import SRDI_NEAR, completed

MOBILE, EMAIL, NAME = "13900000088", "liaison88@example.cn", "杭州余杭通知测试科技有限公司"


async def _published(sf: async_sessionmaker[AsyncSession]) -> list[NoticeSent]:
    ob = backbone.outbox
    async with sf() as s:
        rows = (await s.execute(select(ob.c.payload, ob.c.key).where(ob.c.type == NOTICE_SENT)
                                .order_by(ob.c.seq))).all()
    for payload, _ in rows:
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        assert MOBILE not in text and EMAIL not in text and "联络员" not in text  # no contact data
    return [NoticeSent.model_validate(json.loads(p) if isinstance(p, str) else p) for p, _ in rows]


async def test_each_notice_is_published_once_without_contact_data(
    clean: Mailbox, sf: async_sessionmaker[AsyncSession]
) -> None:
    u = uscc("330110")
    await apply(sf, registered(u, "330110", NAME, MOBILE, EMAIL))
    title = recognised(u, "330110", "srdi")
    await apply(sf, title)
    await apply(sf, title)  # delivered again: no second notice, nothing published
    await apply(sf, completed(u, "330110", 2025, [{**SRDI_NEAR, "tier": "little_giant", "level": "national"}]))

    sent = await _published(sf)
    async with sf() as s:
        ids = set((await s.execute(select(notices.c.id))).scalars())
        assert (await s.execute(select(func.count()).select_from(notices))).scalar_one() == len(sent)
    assert {n.notice_id for n in sent} == ids
    mine = {n.kind: n for n in sent if n.uscc == u and n.recipient_kind == "enterprise"}
    recognised_notice = mine["tier_recognised"]
    assert (recognised_notice.region_code, recognised_notice.tier, recognised_notice.kind_name) == (
        "330110", "srdi", "认定通知")
    assert sorted(recognised_notice.channels) == ["email", "sms"]
    advice = mine["gap_advice"]
    assert (advice.tier, advice.tier_name, advice.channels) == ("little_giant", "专精特新“小巨人”企业", [])
    assert all(n.year == advice.occurred_at.year for n in sent)
    # officials' notices (no commissioner in 余杭 here) carry the officials' region
    assert all(n.region_code for n in sent)

"""Scheduled reminders: in the database, claimed with SKIP LOCKED, sent once by two instances."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.notification.app.reminders import run_due_reminders
from services.notification.db.models import notices, reminders
from services.notification.domain.schedule import CST
from services.notification.fake_providers import Mailbox
from shared.db import make_session_factory
from tests.harness import engine_for
from tests.notification.conftest import apply, event, recognised, registered, uscc


async def _count(sf: async_sessionmaker[AsyncSession], template: str) -> int:
    async with sf() as s:
        return int((await s.execute(
            select(func.count()).where(notices.c.template_code == template))).scalar_one())


async def test_two_scheduler_instances_send_each_reminder_once(
    clean: Mailbox, sf: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    u = uscc()
    valid_to = datetime.now(CST).date() + timedelta(days=100)
    await apply(sf, registered(u, "330110", "余杭提醒科技有限公司", "13900000222", None))
    await apply(sf, recognised(u, "330110", "srdi", rid="rec-remind", valid_to=valid_to.isoformat()))
    async with sf() as s:
        kinds = sorted((await s.execute(select(reminders.c.key).where(reminders.c.uscc == u))).scalars().all())
    assert [k for k in kinds if k.startswith("validity")] == ["validity:rec-remind:30", "validity:rec-remind:90"]
    assert await run_due_reminders(sf) == 0 or datetime.now(CST).date() >= date(2027, 4, 16)  # nothing due yet

    # 29 days before expiry both validity reminders are due; two instances race for them
    due_now = datetime.combine(valid_to - timedelta(days=29), datetime.min.time(), tzinfo=CST).astimezone(UTC)
    other_engine = engine_for("notification")
    try:
        sf2 = make_session_factory(other_engine)
        a, b = await asyncio.gather(run_due_reminders(sf, now=due_now), run_due_reminders(sf2, now=due_now))
    finally:
        await other_engine.dispose()
    assert await _count(sf, "validity_expiring") == 2  # 90 and 30 days, enterprise only (no commissioner)
    assert a + b >= 2
    assert await run_due_reminders(sf, now=due_now) == 0  # a restart finds nothing left to send
    async with sf() as s:
        bodies = (await s.execute(select(notices.c.body).where(notices.c.template_code == "validity_expiring")
                                  )).scalars().all()
    assert any("90" in b for b in bodies) and any("30" in b for b in bodies)


async def test_revocation_cancels_pending_reminders(clean: Mailbox, sf: async_sessionmaker[AsyncSession]) -> None:
    u = uscc()
    valid_to = datetime.now(CST).date() + timedelta(days=100)
    await apply(sf, recognised(u, "330110", "srdi", rid="rec-cancel", valid_to=valid_to.isoformat()))
    await apply(sf, event("zjtx.evaluation.tier.revoked.v1", u, {
        "recognition_id": "rec-cancel", "uscc": u, "region_code": "330110", "tier": "srdi", "level": "province",
        "ground": "发生重大安全事故", "revoked_on": "2026-11-20", "ban_until": None}, "330110"))
    far = datetime.now(UTC) + timedelta(days=400)
    await run_due_reminders(sf, now=far)
    assert await _count(sf, "validity_expiring") == 0
    assert await _count(sf, "data_update_deadline") == 0  # no active title left: not reminded
    async with sf() as s:
        statuses = set((await s.execute(select(reminders.c.status).where(reminders.c.uscc == u))).scalars().all())
    assert statuses == {"cancelled"}


async def test_data_update_reminder_chains_to_next_year(clean: Mailbox, sf: async_sessionmaker[AsyncSession]) -> None:
    u = uscc()
    await apply(sf, recognised(u, "330110", "innovative", valid_to="2035-12-31"))
    async with sf() as s:
        (due,) = (await s.execute(select(reminders.c.due_at).where(reminders.c.kind == "data_update_deadline")
                                  )).scalars().all()
    assert await run_due_reminders(sf, now=due + timedelta(minutes=1)) == 1
    assert await _count(sf, "data_update_deadline") == 1
    async with sf() as s:
        pending = (await s.execute(select(reminders.c.due_at).where(
            reminders.c.kind == "data_update_deadline", reminders.c.status == "pending"))).scalars().all()
    assert len(pending) == 1 and pending[0].year == due.year + 1

"""Finance's demo step after evaluation's history (``services/finance/demo.py`` ``load_payments``): the pending
entitlements of past years are approved by an official of the policy's jurisdiction (not their creator) and paid
through the gateway by the demo load itself, its events marked as the demo's (notification: inbox only); this
year's stay pending; a second load changes nothing."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import select, text

from services.finance.app.entitlements import on_recognised
from services.finance.db.models import EntitlementRow, backbone
from services.finance.demo import load_demo, load_payments
from services.finance.events import contracts as ev
from shared.db import make_session_factory
from shared.demo import is_demo_correlation
from tests.finance.gateway import GatewayServer
from tests.harness import engine_for, settings


def _recognised(tier: str, level: str, year: int) -> ev.TierRecognised:
    day = date(year, 6, 1)
    return ev.TierRecognised(recognition_id=f"rec-{uuid.uuid4().hex[:8]}",
                             uscc="91330110" + uuid.uuid4().hex[:10].upper(), region_code="330110", tier=tier,
                             level=level, batch_year=year, announced_on=day, valid_from=day,
                             valid_to=day.replace(year=year + 3) - timedelta(days=1))


async def test_past_entitlements_approved_by_a_checker_and_paid_inbox_only(gateway: GatewayServer) -> None:
    cfg = settings("finance").model_copy(update={"payment_gateway_url": gateway.url})
    await load_demo(cfg, 100)  # policies and budgets (since 2022)
    engine = engine_for("finance")
    sf = make_session_factory(engine)
    last, this = date.today().year - 1, date.today().year
    try:
        async with sf() as s, s.begin():
            for tier, level, year in (("srdi", "province", last), ("little_giant", "national", last - 1),
                                      ("srdi", "province", this)):
                await on_recognised(s, _recognised(tier, level, year))
        async with sf() as s:
            created = (await s.execute(select(EntitlementRow))).scalars().all()
        past = [e for e in created if e.year < this and e.amount > 0]
        assert past and any(e.year == this for e in created)

        await load_payments(cfg, 100, wait_seconds=5)
        async with sf() as s:
            rows = {e.id: e for e in (await s.execute(select(EntitlementRow))).scalars().all()}
            heads = (await s.execute(select(backbone.outbox.c.headers).where(
                backbone.outbox.c.type.in_(("zjtx.finance.entitlement.approved.v1",
                                            "zjtx.finance.disbursement.paid.v1"))))).scalars().all()
            snapshot = (await s.execute(text(
                "SELECT (SELECT count(*) FROM finance.disbursements), (SELECT count(*) FROM finance.outbox),"
                " (SELECT count(*) FROM finance.audit_log)"))).one()
        for e in past:
            row = rows[e.id]
            assert row.status == "paid", (row.policy_id, row.status)
            assert row.decided_by is not None and row.decided_by.endswith(f"-{row.jurisdiction}-b")  # the checker
            assert row.decided_by != row.created_by
        assert all(rows[e.id].status == "pending" for e in created if e.year == this and e.amount > 0)
        assert gateway.gw.paid_count == len(past)
        assert len(heads) == 2 * len(past) and all(is_demo_correlation(h.get("ce_correlationid")) for h in heads)

        await load_payments(cfg, 100, wait_seconds=5)  # nothing pending of a past year: changes nothing
        async with sf() as s:
            again = (await s.execute(text(
                "SELECT (SELECT count(*) FROM finance.disbursements), (SELECT count(*) FROM finance.outbox),"
                " (SELECT count(*) FROM finance.audit_log)"))).one()
        assert tuple(again) == tuple(snapshot) and gateway.gw.paid_count == len(past)
    finally:
        await engine.dispose()

"""Reminder dates, quiet hours, templates and policy matching (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from services.notification.domain.policy import match_reason
from services.notification.domain.schedule import (
    CST,
    backoff_seconds,
    data_update_reminder,
    data_update_reminder_after,
    quiet_until,
    validity_reminders,
)
from services.notification.domain.templates import TEMPLATES, render


def test_validity_reminders_90_and_30_days_before() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    got = validity_reminders(date(2027, 1, 1), now)
    assert [d for d, _ in got] == [90, 30]
    assert got[0][1] == datetime(2026, 10, 3, 9, 0, tzinfo=CST)
    assert got[1][1] == datetime(2026, 12, 2, 9, 0, tzinfo=CST)


def test_validity_reminders_late_or_expired() -> None:
    now = datetime(2026, 12, 20, tzinfo=UTC)
    assert validity_reminders(date(2027, 1, 1), now) == [(30, now)]  # inside the last window: once, now
    assert validity_reminders(date(2026, 12, 1), now) == []


def test_data_update_reminder() -> None:
    deadline, due = data_update_reminder(datetime(2026, 11, 22, tzinfo=UTC))
    assert deadline == date(2027, 4, 30)
    assert due == datetime(2027, 4, 16, 9, 0, tzinfo=CST)
    assert data_update_reminder_after(deadline)[0] == date(2028, 4, 30)


def test_quiet_hours_wrapping_midnight() -> None:
    start, end = time(22, 0), time(7, 0)
    late = datetime(2026, 5, 1, 23, 30, tzinfo=CST)
    assert quiet_until(late, start, end) == datetime(2026, 5, 2, 7, 0, tzinfo=CST)
    early = datetime(2026, 5, 2, 6, 0, tzinfo=CST)
    assert quiet_until(early, start, end) == datetime(2026, 5, 2, 7, 0, tzinfo=CST)
    assert quiet_until(datetime(2026, 5, 2, 12, 0, tzinfo=CST), start, end) is None
    assert quiet_until(late, None, None) is None


def test_quiet_hours_same_day_window() -> None:
    now = datetime(2026, 5, 1, 12, 30, tzinfo=CST)
    assert quiet_until(now, time(12, 0), time(14, 0)) == datetime(2026, 5, 1, 14, 0, tzinfo=CST)
    assert quiet_until(now + timedelta(hours=2), time(12, 0), time(14, 0)) is None


def test_backoff_grows_and_caps() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert backoff_seconds(50) == 600.0


def test_templates_render_chinese_with_version() -> None:
    r = render("tier_recognised", {"enterprise_name": "杭州某科技", "tier_name": "专精特新中小企业",
                                   "level_name": "省级", "batch_year": 2026, "valid_from": "2026-01-01",
                                   "valid_to": "2028-12-31"})
    assert r.version == 1 and r.code == "tier_recognised"
    assert "杭州某科技" in r.body and "省级专精特新中小企业" in r.body and "2028-12-31" in r.body
    assert render("tier_revoked", {}).urgent and render("commissioner_unavailable", {}).urgent
    assert not render("review_decided", {}).urgent
    assert all(t.version >= 1 for t in TEMPLATES.values())


def test_policy_match_reason() -> None:
    kw = {"jurisdiction": "330100", "policy_tiers": ["little_giant"]}
    reason = match_reason(**kw, region_code="330110", held_tiers=["little_giant"])
    assert reason == "贵企业已获认定:专精特新“小巨人”企业"
    assert "经评估" in (match_reason(**kw, region_code="330110", eligible_tiers=["little_giant"]) or "")
    assert match_reason(**kw, region_code="331102", held_tiers=["little_giant"]) is None  # other city
    assert match_reason(**kw, region_code="330110", held_tiers=["srdi"]) is None
    assert match_reason(jurisdiction="330000", policy_tiers=[], region_code="331102") is not None
    assert match_reason(**kw, region_code="330110", held_tiers=["little_giant"], effective_to=date(2020, 1, 1),
                        today=date(2026, 1, 1)) is None

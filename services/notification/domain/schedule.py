"""Reminder dates and quiet hours (pure). Times are China Standard Time (UTC+8, no DST)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")
REMINDER_HOUR = time(9, 0)
VALIDITY_REMINDER_DAYS: tuple[int, ...] = (90, 30)
# 年度数据更新 deadline (month, day) and how many days before it the reminder goes out.
DATA_UPDATE_DEADLINE: tuple[int, int] = (4, 30)
DATA_UPDATE_LEAD_DAYS = 14


def at_cst(day: date, at: time = REMINDER_HOUR) -> datetime:
    return datetime.combine(day, at, tzinfo=CST).astimezone(UTC)


def validity_reminders(valid_to: date, now: datetime) -> list[tuple[int, datetime]]:
    """(days before expiry, due_at) for each reminder still meaningful (the title has not expired yet)."""
    if at_cst(valid_to, time(23, 59)) <= now:
        return []
    out = []
    for days in VALIDITY_REMINDER_DAYS:
        due = at_cst(valid_to - timedelta(days=days))
        if due >= now - timedelta(days=1):  # a 90-day notice makes no sense when 20 days are left
            out.append((days, due))
    if not out:  # already inside the last window: remind once, now
        out.append((VALIDITY_REMINDER_DAYS[-1], now))
    return out


def next_data_update_deadline(now: datetime, deadline: tuple[int, int] = DATA_UPDATE_DEADLINE) -> date:
    today = now.astimezone(CST).date()
    this_year = date(today.year, *deadline)
    return this_year if this_year >= today else date(today.year + 1, *deadline)


def data_update_reminder(now: datetime, lead_days: int = DATA_UPDATE_LEAD_DAYS) -> tuple[date, datetime]:
    """(deadline, due_at) of the next annual data-update reminder."""
    deadline = next_data_update_deadline(now)
    return deadline, at_cst(deadline - timedelta(days=lead_days))


def quiet_until(now: datetime, start: time | None, end: time | None) -> datetime | None:
    """If ``now`` falls in the recipient's quiet window [start, end) (CST, may wrap midnight), when it ends."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(CST)
    t = local.timetz().replace(tzinfo=None)
    if start < end:
        inside = start <= t < end
        end_day = local.date()
    else:  # wraps midnight, e.g. 22:00–07:00
        inside = t >= start or t < end
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=CST).astimezone(UTC)


def backoff_seconds(attempts: int, base: float = 2.0, cap: float = 600.0) -> float:
    """Exponential retry delay after ``attempts`` failed tries."""
    return float(min(cap, base * (2 ** max(0, attempts - 1))))


def data_update_reminder_after(deadline: date, lead_days: int = DATA_UPDATE_LEAD_DAYS) -> tuple[date, datetime]:
    """The following year's (deadline, due_at) once a reminder for ``deadline`` went out."""
    nxt = date(deadline.year + 1, deadline.month, deadline.day)
    return nxt, at_cst(nxt - timedelta(days=lead_days))

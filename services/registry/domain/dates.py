"""The registry's calendar: today's date (UTC) and year ends."""

from __future__ import annotations

from datetime import UTC, date, datetime


def today() -> date:
    return datetime.now(UTC).date()


def year_end(year: int) -> date:
    return date(year, 12, 31)

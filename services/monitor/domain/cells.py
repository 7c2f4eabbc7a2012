"""Spreadsheet cells safe to open: text a spreadsheet would run as a formula is written as plain text."""

from __future__ import annotations

from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value: Any) -> Any:
    """A cell value with formula injection defused (OWASP CSV injection): text starting with = + - @ or a control
    character gets a leading apostrophe; numbers pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value

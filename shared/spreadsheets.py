"""Spreadsheets the services hand out (exports, import templates): one way to write an XLSX workbook."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any


def write_xlsx(sheet: str, rows: Iterable[Sequence[Any]]) -> bytes:
    """A one-sheet XLSX workbook of ``rows`` (the header row first)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    for row in rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()

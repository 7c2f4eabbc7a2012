"""Spreadsheets the services hand out (exports, import templates): one way to write an XLSX workbook.

Every text cell goes through :func:`safe_cell` (OWASP CSV-injection guidance): a text that a spreadsheet would
read as a formula or a DDE command — starting with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return or a line
feed — is written as text with a leading ``'``, so a name like ``=HYPERLINK("http://…")`` is shown, never evaluated.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_text(value: str) -> str:
    """``value`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def safe_cell(value: Any) -> Any:
    """A cell value for an export: texts made safe (:func:`safe_text`); numbers, dates, booleans as they are."""
    return safe_text(value) if isinstance(value, str) else value


def write_xlsx(sheet: str, rows: Iterable[Sequence[Any]]) -> bytes:
    """A one-sheet XLSX workbook of ``rows`` (the header row first). Texts are stored as text cells, never as
    formulas (see :func:`safe_cell`)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    for row in rows:
        cells: list[Any] = []
        for value in row:
            if isinstance(value, str):
                cell = WriteOnlyCell(ws, value=safe_text(value))
                cell.data_type = "s"  # a text cell even if it still looked like a formula to openpyxl
                cells.append(cell)
            else:
                cells.append(value)
        ws.append(cells)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()

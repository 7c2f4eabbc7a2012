"""The dated GB/T 2260 snapshot (``shared/data/regions_gbt2260.csv``) and the region tree built from it.

Jurisdiction is computed from this tree, never from string patterns on a code: a territory covers itself and
its descendants (a province its cities, counties and programme zones; a city its counties and zones; a county
only itself). The tree is read once per process (:func:`region_tree`) and every lookup is a dict/set probe.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "data" / "regions_gbt2260.csv"
SNAPSHOT = "2025-04"


@dataclass(frozen=True)
class RegionRow:
    code: str
    name: str
    parent_code: str | None
    level: str
    is_zone: bool
    status: str
    retired_on: date | None
    successor_code: str | None
    note: str | None


def read_regions(path: Path = DATA_FILE) -> list[RegionRow]:
    with path.open(encoding="utf-8", newline="") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    rows: list[RegionRow] = []
    for r in csv.DictReader(lines):
        rows.append(
            RegionRow(
                code=r["code"],
                name=r["name"],
                parent_code=r["parent_code"] or None,
                level=r["level"],
                is_zone=r["is_zone"] == "true",
                status=r["status"],
                retired_on=date.fromisoformat(r["retired_on"]) if r["retired_on"] else None,
                successor_code=r["successor_code"] or None,
                note=r["note"] or None,
            )
        )
    return rows


class RegionTree:
    """Codes, levels and descendants of the snapshot (retired codes included: data may still carry them)."""

    def __init__(self, rows: list[RegionRow]) -> None:
        self.rows: dict[str, RegionRow] = {r.code: r for r in rows}
        children: dict[str, list[str]] = {}
        for r in rows:
            if r.parent_code:
                children.setdefault(r.parent_code, []).append(r.code)
        self._covered: dict[str, frozenset[str]] = {}
        for code in self.rows:
            found: set[str] = set()
            stack = [code]
            while stack:
                current = stack.pop()
                if current not in found:
                    found.add(current)
                    stack.extend(children.get(current, ()))
            self._covered[code] = frozenset(found)

    def get(self, code: str) -> RegionRow | None:
        return self.rows.get(code)

    def is_active(self, code: str) -> bool:
        row = self.rows.get(code)
        return row is not None and row.status == "active"

    def level(self, code: str) -> str | None:
        """``province``, ``city`` or ``county`` (programme zones are county-level), None if unknown."""
        row = self.rows.get(code)
        return row.level if row else None

    def covered(self, territory: str) -> frozenset[str]:
        """Every code within ``territory`` (itself included); empty for an unknown code."""
        return self._covered.get(territory, frozenset())

    def covers(self, territory: str, code: str) -> bool:
        return code in self._covered.get(territory, ())

    def name(self, code: str) -> str | None:
        row = self.rows.get(code)
        return row.name if row else None

    def ancestor(self, code: str, level: str) -> str | None:
        """The region of ``level`` (``county`` / ``city`` / ``province``) containing ``code`` (itself included)."""
        row = self.rows.get(code)
        while row is not None and row.level != level:
            row = self.rows.get(row.parent_code) if row.parent_code else None
        return row.code if row else None


@lru_cache(maxsize=1)
def region_tree() -> RegionTree:
    """The process-wide tree of the shipped snapshot (read on first use)."""
    return RegionTree(read_regions())

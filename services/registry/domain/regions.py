"""The dated GB/T 2260 snapshot shipped in ``services/registry/data/regions_gbt2260.csv`` (pure parsing)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "regions_gbt2260.csv"
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

"""Data loads shared by migrations and the demo: the regions snapshot (idempotent upsert)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert

from services.registry.db.models import Region, table_of
from services.registry.domain.regions import read_regions


def region_rows() -> list[dict[str, Any]]:
    return [r.__dict__.copy() for r in read_regions()]


def upsert_regions_stmt() -> Any:
    stmt = insert(table_of(Region))
    return stmt.on_conflict_do_update(
        index_elements=["code"],
        set_={
            c: stmt.excluded[c]
            for c in ("name", "parent_code", "level", "is_zone", "status", "retired_on", "successor_code", "note")
        },
    )


def load_regions_sync(conn: Connection) -> int:
    rows = region_rows()
    conn.execute(upsert_regions_stmt(), rows)
    return len(rows)

"""The registry's alembic history: one head, models match the migrated schema, regions loaded by migration."""

from __future__ import annotations

import asyncio

from alembic import command

from services.registry.domain.regions import read_regions
from shared.migrations import alembic_config, script_heads
from tests.harness import settings


def test_single_head() -> None:
    assert len(script_heads("registry")) == 1


async def test_models_match_schema() -> None:
    cfg = alembic_config("registry", settings("registry").database_url)
    await asyncio.to_thread(command.check, cfg)  # raises if autogenerate would produce a new revision


def test_region_snapshot_shape() -> None:
    rows = read_regions()
    active = [r for r in rows if r.status == "active" and not r.is_zone]
    assert len([r for r in active if r.level == "county"]) == 90
    assert len([r for r in active if r.level == "city"]) == 11
    assert {r.code for r in rows if r.status == "retired"} >= {"330103", "330104", "330181", "330184", "331021"}
    zones = [r for r in rows if r.is_zone]
    assert [(z.code, z.parent_code) for z in zones] == [("331199", "331100")]

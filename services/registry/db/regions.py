"""Regions: the region tree as stored, and region conditions for queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.db.models import Region
from shared.db import in_territory


def region_cond(column: Any, code: str) -> ColumnElement[bool]:
    """``column`` lies within ``code``: the codes the GB/T 2260 tree puts there (never a LIKE pattern)."""
    return in_territory(column, code)


@dataclass
class RegionIndex:
    regions: dict[str, Region]

    @property
    def codes(self) -> set[str]:
        """Every code incl. retired ones, excluding project zone codes (not GB/T 2260)."""
        return {c for c, r in self.regions.items() if not r.is_zone}

    def name(self, code: str) -> str | None:
        r = self.regions.get(code)
        return r.name if r else None


async def region_index(session: AsyncSession, codes: set[str] | None = None) -> RegionIndex:
    """The whole tree, or only the regions of ``codes``."""
    stmt = select(Region)
    if codes is not None:
        if not codes:
            return RegionIndex({})
        stmt = stmt.where(Region.code.in_(codes))
    rows = (await session.scalars(stmt)).all()
    return RegionIndex({r.code: r for r in rows})


async def all_regions(session: AsyncSession) -> list[Region]:
    return list((await session.scalars(select(Region).order_by(Region.code))).all())


async def get_region(session: AsyncSession, code: str) -> Region | None:
    return await session.get(Region, code)


async def active_children(session: AsyncSession, code: str) -> list[Region]:
    return list(
        (
            await session.scalars(
                select(Region).where(Region.parent_code == code, Region.status == "active").order_by(Region.code)
            )
        ).all()
    )

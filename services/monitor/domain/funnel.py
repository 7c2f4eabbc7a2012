"""The recognition funnel's stages (pool → applied → reviewed at each level → publicity → recognised)."""

from __future__ import annotations

STAGES: tuple[str, ...] = ("submitted", "county", "city", "province", "publicity", "recognised")
STAGE_RANK: dict[str, int] = {s: i for i, s in enumerate(STAGES)} | {"rejected": len(STAGES)}
STAGE_NAMES: dict[str, str] = {
    "submitted": "已申报", "county": "县级审核通过", "city": "市级审核通过", "province": "省级审核通过",
    "publicity": "公示中", "recognised": "已认定", "rejected": "未通过",
}


def stage_after_review(level: str, decision: str) -> str | None:
    """The stage an application reaches by a review decision (``returned`` changes nothing)."""
    if decision == "rejected":
        return "rejected"
    if decision == "approved":
        return "province" if level == "national" else level if level in STAGE_RANK else None
    return None

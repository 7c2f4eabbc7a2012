"""Which rule sets are in force for an enterprise on a decision date (decision 1)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from functools import lru_cache

from services.evaluation.domain.rules import RuleSet


def in_force(
    rulesets: Iterable[RuleSet], as_of: date, region_code: str | None, tier: str | None = None
) -> list[RuleSet]:
    """Rule sets effective on ``as_of`` whose jurisdiction covers ``region_code`` (national covers all;
    a province 330000 covers 33xxxx; a city 330100 covers 3301xx; a county only itself), optionally of one
    tier; for each id only the highest version. Ordered national → province → city → county, then id."""
    best: dict[str, RuleSet] = {}
    for rs in rulesets:
        if tier is not None and rs.tier != tier:
            continue
        if not rs.in_force_on(as_of) or not rs.covers_region(region_code):
            continue
        cur = best.get(rs.id)
        if cur is None or rs.version > cur.version:
            best[rs.id] = rs
    order = {"national": 0, "province": 1, "city": 2, "county": 3}
    return sorted(best.values(), key=lambda r: (order[r.level], r.id))


@lru_cache(maxsize=1)
def _default() -> tuple[RuleSet, ...]:
    from services.evaluation.domain.loader import load_all

    return tuple(load_all())


class _Lazy(Sequence[RuleSet]):
    """The shipped rule sets, loaded (and compiled) on first use."""

    def __getitem__(self, i: int) -> RuleSet:  # type: ignore[override]
        return _default()[i]

    def __len__(self) -> int:
        return len(_default())

    def __iter__(self) -> Iterator[RuleSet]:
        return iter(_default())


DEFAULT_RULESETS: Sequence[RuleSet] = _Lazy()

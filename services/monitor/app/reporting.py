"""Monitor use cases: the region reports, rolled up from the read models to the child regions of a region."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor.db import reporting as q
from services.monitor.db.regions import region_tree
from services.monitor.domain.funnel import STAGES
from services.monitor.domain.regions import RegionNode, level_of
from services.monitor.domain.reports import (
    Attainment,
    AttainmentRow,
    Candidate,
    CommissionerLoad,
    CommissionerNotices,
    Forecast,
    ForecastRow,
    Funnel,
    FunnelRow,
    Money,
    MoneyRow,
    NoticeKindRow,
    NoticeRegionRow,
    Notices,
    RecognitionRow,
    Recognitions,
    RegionRef,
    YearOnYear,
    YearRow,
    nearness,
    ratio,
    yuan,
)
from shared.regions import region_tree as shared_tree
from shared.tiers import TIERS, tier_name


def ref(code: str) -> RegionRef:
    return RegionRef(code=code, name=region_tree().name(code), level=level_of(code))


def as_of_for(year: int, today: date | None = None) -> date:
    """Counted at the end of ``year``, or today for the current year."""
    today = today or datetime.now(UTC).date()
    return min(date(year, 12, 31), today)


async def target_years(session: AsyncSession, jurisdiction: str) -> list[int]:
    """The years with targets within ``jurisdiction`` up to the current one (the years worth a page)."""
    this_year = datetime.now(UTC).year
    return [y for y in await q.target_years(session, jurisdiction) if y <= this_year]


async def default_year(session: AsyncSession, jurisdiction: str) -> int:
    """The year shown when none is asked for: the latest with targets within ``jurisdiction`` up to the current one
    (targets are published for a year that has begun or ended, so the current year often has none yet and its
    attainment would be blank), else the current year."""
    years = await target_years(session, jurisdiction)
    return years[-1] if years else datetime.now(UTC).year


def children(code: str) -> list[RegionNode]:
    return region_tree().children(code)


def _bucket(code: str, kids: list[RegionNode]) -> str | None:
    """The child region (of the page's region) ``code`` lies in."""
    for kid in kids:
        if shared_tree().covers(kid.code, code):
            return kid.code
    return None


def _targets(rows: list[dict[str, Any]], measure: str = "recognised") -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        if r["measure"] == measure:
            out[(r["region_code"], r["tier"])] += int(r["target"])
    return out


async def attainment(session: AsyncSession, code: str, year: int, measure: str = "recognised") -> Attainment:
    """Targets against actuals: ``recognised`` — titles valid on the counting day; ``pool`` — pool members."""
    kids = children(code)
    as_of = as_of_for(year)
    if measure == "pool":
        counts = [(r["region_code"], r["tier"], r["members"]) for r in await q.pool(session, code, year)]
    else:
        counts = [(r["region_code"], r["tier"], r["current"])
                  for r in await q.recognitions(session, code, year, as_of)]
    targets = _targets(await q.targets(session, code, year), measure)
    actual: dict[tuple[str, str], int] = defaultdict(int)
    for region_code, tier, n in counts:
        actual[(code, tier)] += n
        kid = _bucket(region_code, kids)
        if kid:
            actual[(kid, tier)] += n
    tiers = [t for t in TIERS if any(k[1] == t for k in (*actual, *targets))] or ["srdi"]

    def row(region: str, tier: str) -> AttainmentRow:
        target = targets.get((region, tier))
        got = actual.get((region, tier), 0)
        return AttainmentRow(region=ref(region), tier=tier, tier_name=tier_name(tier), target=target, actual=got,
                             ratio=ratio(got, target))

    return Attainment(
        region=ref(code), year=year, as_of=as_of.isoformat(), measure=measure,
        breadcrumbs=[ref(n.code) for n in region_tree().ancestors(code)],
        children=[ref(k.code) for k in kids],
        total=[row(code, t) for t in tiers],
        rows=[row(k.code, t) for k in kids for t in tiers],
    )


async def funnel(session: AsyncSession, code: str, year: int, tier: str | None = None) -> Funnel:
    kids = children(code)
    regions = [code, *(k.code for k in kids)]
    pool: dict[str, int] = defaultdict(int)
    stages: dict[str, dict[str, int]] = {r: dict.fromkeys((*STAGES, "rejected"), 0) for r in regions}
    recognised: dict[str, int] = defaultdict(int)

    def targets_of(region_code: str) -> list[str]:
        kid = _bucket(region_code, kids)
        return [code, kid] if kid else [code]

    for r in await q.pool(session, code, year):
        if tier is None or r["tier"] == tier:
            for t in targets_of(r["region_code"]):
                pool[t] += r["members"]
    for r in await q.applications(session, code, year):
        if tier is None or r["tier"] == tier:
            for t in targets_of(r["region_code"]):
                stages[t][r["stage"]] = stages[t].get(r["stage"], 0) + r["n"]
    for r in await q.recognitions(session, code, year, as_of_for(year)):
        if tier is None or r["tier"] == tier:
            for t in targets_of(r["region_code"]):
                recognised[t] += r["new"]

    def row(region: str) -> FunnelRow:
        return FunnelRow(region=ref(region), pool=pool[region], applied=sum(stages[region].values()),
                         stages=stages[region], recognised=recognised[region])

    return Funnel(region=ref(code), year=year, tier=tier, total=row(code), rows=[row(k.code) for k in kids])


async def money(session: AsyncSession, code: str, year: int) -> Money:
    kids = children(code)
    regions = [code, *(k.code for k in kids)]
    zero = Decimal(0)
    sums: dict[str, dict[str, Decimal]] = {
        r: {"n": zero, "created": zero, "approved": zero, "paid": zero, "recovered": zero} for r in regions
    }
    for r in await q.entitlements(session, code, year):
        kid = _bucket(r["region_code"], kids)
        for t in [code, kid] if kid else [code]:
            s = sums[t]
            s["n"] += r["n"]
            s["created"] += r["amount"] or zero
            if r["status"] in ("approved", "paid", "recovered"):
                s["approved"] += r["amount"] or zero
            s["paid"] += r["paid"] or zero
            s["recovered"] += r["recovered"] or zero
    budget: dict[str, Decimal] = {}
    for b in await q.budgets(session, code, year):
        kid = _bucket(b["jurisdiction"], kids)
        for t in [code, kid] if kid else [code]:
            budget[t] = budget.get(t, zero) + b["amount"]

    def row(region: str) -> MoneyRow:
        s = sums[region]
        b = budget.get(region)
        spend = s["paid"] - s["recovered"]
        return MoneyRow(region=ref(region), entitlements=int(s["n"]), created=yuan(s["created"]),
                        approved=yuan(s["approved"]), paid=yuan(s["paid"]), recovered=yuan(s["recovered"]),
                        budget=None if b is None else yuan(b), spend_ratio=ratio(spend, b))

    return Money(region=ref(code), year=year, total=row(code), rows=[row(k.code) for k in kids])


async def recognitions(session: AsyncSession, code: str, year: int) -> Recognitions:
    by_tier: dict[str, dict[str, int]] = {}
    for r in await q.recognitions(session, code, year, as_of_for(year)):
        s = by_tier.setdefault(r["tier"], {"current": 0, "new": 0, "expired": 0, "revoked": 0})
        for k in s:
            s[k] += r[k]
    rows = [RecognitionRow(tier=t, tier_name=tier_name(t), **by_tier[t]) for t in TIERS if t in by_tier]
    return Recognitions(region=ref(code), year=year, rows=rows)


async def year_on_year(session: AsyncSession, code: str, year: int, years: int = 3) -> YearOnYear:
    rows = []
    for y in range(year - years + 1, year + 1):
        f = await funnel(session, code, y)
        m = await money(session, code, y)
        rows.append(YearRow(year=y, recognised=f.total.recognised, pool=f.total.pool, applied=f.total.applied,
                            paid=m.total.paid))
    return YearOnYear(region=ref(code), rows=rows)


async def forecast(session: AsyncSession, code: str, year: int, tier: str | None = None,
                   per_county: int = 20) -> Forecast:
    """Per county (under ``code``) and tier: how many the county still lacks for its target, and the pool's
    enterprises nearest to qualifying."""
    targets = _targets(await q.targets(session, code, year))
    actual: dict[tuple[str, str], int] = defaultdict(int)
    for r in await q.recognitions(session, code, year, as_of_for(year)):
        actual[(r["region_code"], r["tier"])] += r["current"]
    cands: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in await q.candidates(session, code, year, tier):
        cands[(r["region_code"], r["tier"])].append(r)
    keys = {k for k in (*targets, *cands) if level_of(k[0]) == "county" and (tier is None or k[1] == tier)}
    rows = []
    for region, t in sorted(keys, key=lambda k: (k[0], TIERS.index(k[1]) if k[1] in TIERS else 99)):
        target = targets.get((region, t))
        got = actual.get((region, t), 0)
        near = sorted(cands.get((region, t), []), key=lambda r: nearness(r["unmet"], r["yuan_gap"], r["score"]))
        rows.append(ForecastRow(
            region=ref(region), tier=t, tier_name=tier_name(t), target=target, actual=got,
            lacking=None if target is None else max(target - got, 0),
            candidates=[Candidate(uscc=r["uscc"], name=r["name"], unmet=r["unmet"],
                                  yuan_gap=None if r["yuan_gap"] is None else yuan(r["yuan_gap"]),
                                  score=None if r["score"] is None else yuan(r["score"]))
                        for r in near[:per_county]],
        ))
    return Forecast(region=ref(code), year=year, rows=rows)


async def notices(session: AsyncSession, code: str, year: int) -> Notices:
    """Notices sent in ``year`` (notification's ``notice.sent``): per child region, per kind and tier, per
    commissioner."""
    kids = children(code)
    regions: dict[str, dict[str, int]] = {r: {"total": 0, "to_enterprises": 0, "gap_advice": 0}
                                          for r in (code, *(k.code for k in kids))}
    kinds: dict[tuple[str, str | None], dict[str, Any]] = {}
    per_commissioner: dict[str, int] = defaultdict(int)
    for r in await q.notices(session, code, year):
        n, to_enterprise = int(r["n"]), r["recipient_kind"] == "enterprise"
        kid = _bucket(r["region_code"], kids)
        for t in [code, kid] if kid else [code]:
            regions[t]["total"] += n
            if to_enterprise:
                regions[t]["to_enterprises"] += n
                if r["kind"] == "gap_advice":
                    regions[t]["gap_advice"] += n
        k = kinds.setdefault((r["kind"], r["tier"]), {"kind_name": r["kind_name"] or r["kind"], "enterprise": 0,
                                                       "commissioner": 0, "official": 0, "sent_out": 0})
        k[r["recipient_kind"] if r["recipient_kind"] in ("enterprise", "commissioner") else "official"] += n
        k["sent_out"] += int(r["sent_out"])
        if r["commissioner_id"]:
            per_commissioner[r["commissioner_id"]] += n

    def row(region: str) -> NoticeRegionRow:
        return NoticeRegionRow(region=ref(region), **regions[region])

    by_kind = [
        NoticeKindRow(kind=kind, kind_name=v["kind_name"], tier=tier,
                      tier_name=None if tier is None else tier_name(tier), to_enterprises=v["enterprise"],
                      to_commissioners=v["commissioner"], to_officials=v["official"],
                      sent_out=v["sent_out"], total=v["enterprise"] + v["commissioner"] + v["official"])
        for (kind, tier), v in sorted(kinds.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    ]
    return Notices(region=ref(code), year=year, total=row(code), rows=[row(k.code) for k in kids], by_kind=by_kind,
                   commissioners=[CommissionerNotices(commissioner_id=c, notices=n)
                                  for c, n in sorted(per_commissioner.items(), key=lambda cn: (-cn[1], cn[0]))])


async def commissioner_loads(session: AsyncSession, code: str) -> list[CommissionerLoad]:
    return [CommissionerLoad(**r) for r in await q.commissioners(session, code)]


async def region_page(session: AsyncSession, code: str, year: int) -> dict[str, Any]:
    """Everything the region page shows (each part as the API answers it, as JSON values)."""
    return {
        "attainment": (await attainment(session, code, year)).model_dump(mode="json"),
        "funnel": (await funnel(session, code, year)).model_dump(mode="json"),
        "money": (await money(session, code, year)).model_dump(mode="json"),
        "recognitions": (await recognitions(session, code, year)).model_dump(mode="json"),
        "yoy": (await year_on_year(session, code, year)).model_dump(mode="json"),
        "forecast": (await forecast(session, code, year, per_county=5)).model_dump(mode="json"),
        "commissioners": [c.model_dump(mode="json") for c in await commissioner_loads(session, code)],
        "notices": (await notices(session, code, year)).model_dump(mode="json"),
    }

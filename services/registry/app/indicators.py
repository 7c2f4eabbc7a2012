"""Indicator use cases: report a year's indicators (one revision each, merged by source precedence), read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from services.registry.app.enterprises import can_write, facts_payload, get_field, publish
from services.registry.db import enterprises as ents
from services.registry.db import indicators as repo
from services.registry.db.models import Enterprise, IndicatorRevision, backbone
from services.registry.domain import classify
from services.registry.domain.commands import IndicatorsIn
from services.registry.domain.indicators import (
    SELF_REPORT,
    effective_values,
    local_indicators_error,
    merged_consistency_errors,
    published,
    stored_values,
)
from services.registry.events import contracts as ev
from shared.audit import audit_row, record_audits
from shared.auth import Principal, Role
from shared.indicators import IndicatorSet, consistency_errors
from shared.problems import Problem, field_error


@dataclass
class IndicatorReport:
    ent: Enterprise | dict[str, Any]
    year: int
    source: str
    values: dict[str, Any]


def _set(e: Enterprise | dict[str, Any], **values: Any) -> None:
    """Reflect a change already written by an UPDATE (ORM objects are not marked dirty)."""
    for key, value in values.items():
        if isinstance(e, dict):
            e[key] = value
        else:
            set_committed_value(e, key, value)


class InconsistentIndicators(Problem):
    """422: merged into the effective set (agency precedence), a revision would make it inconsistent."""

    def __init__(self, errors: list[tuple[str, str]], index: int = 0) -> None:
        super().__init__(
            422,
            "; ".join(f"indicators.{f}: {m}" for f, m in errors),
            errors=[{"field": f"indicators.{f}", "message": m} for f, m in errors],
        )
        self.pairs = errors
        self.index = index


def _keys(reports: Sequence[IndicatorReport]) -> set[tuple[str, int]]:
    return {(get_field(r.ent, "uscc"), r.year) for r in reports}


async def merged_conflicts(
    session: AsyncSession, reports: Sequence[IndicatorReport]
) -> dict[int, list[tuple[str, str]]]:
    """Which reports (by index) would make their effective set inconsistent, applied in order (a refused report
    is left out of the history the following ones merge with). Used to refuse single import rows up front."""
    if not reports:
        return {}
    prior, _ = await repo.prior_revisions(session, _keys(reports))
    out: dict[int, list[tuple[str, str]]] = {}
    for i, r in enumerate(reports):
        hist = prior[(get_field(r.ent, "uscc"), r.year)]
        before = effective_values(hist) if hist else None
        after = effective_values([*hist, (r.source, r.values)])
        if errors := merged_consistency_errors(before, after, r.values):
            out[i] = errors
        else:
            hist.append((r.source, r.values))
    return out


async def report_indicators(
    session: AsyncSession, actor: Principal | None, actor_sub: str, reports: Sequence[IndicatorReport]
) -> list[tuple[int, dict[str, Any], datetime]]:
    """Store one revision per report and emit indicators.reported with the effective set.

    Returns (revision, effective values, reported_at) per report. Raises InconsistentIndicators (422) when a
    report would make its merged effective set inconsistent. Callers serialise per enterprise
    (row lock on the enterprise) for single writes; imports run one job at a time.
    """
    if not reports:
        return []
    prior, latest_year = await repo.prior_revisions(session, _keys(reports))
    for r in reports:
        u = get_field(r.ent, "uscc")
        latest_year[u] = max(latest_year.get(u, r.year), r.year)
    now = datetime.now(UTC)
    rescaled: dict[str, tuple[Enterprise | dict[str, Any], str]] = {}
    inserts: list[dict[str, Any]] = []
    events: list[tuple[str, str, Any, str | None]] = []
    audits: list[dict[str, Any]] = []
    results: list[tuple[int, dict[str, Any], datetime]] = []
    for r in reports:
        uscc = get_field(r.ent, "uscc")
        hist = prior[(uscc, r.year)]
        before = effective_values(hist) if hist else None
        hist.append((r.source, r.values))
        revision = len(hist)
        effective = effective_values(hist)
        if errors := merged_consistency_errors(before, effective, r.values):
            raise InconsistentIndicators(errors, index=len(results))
        eff_set = IndicatorSet.model_validate(effective)
        full = published(eff_set)
        # scale not given by an official: derived from the latest year's effective figures (300号)
        if get_field(r.ent, "scale_source") != "given" and r.year == latest_year[uscc]:
            derived = classify.derive_scale(
                get_field(r.ent, "industry_code"), eff_set.employees, eff_set.operating_revenue
            )
            if derived is not None and derived.value != get_field(r.ent, "scale"):
                rescaled[uscc] = (r.ent, derived.value)
                _set(r.ent, scale=derived.value, scale_source="derived")
        inserts.append(
            {
                "uscc": uscc,
                "year": r.year,
                "revision": revision,
                "source": r.source,
                "actor": actor_sub,
                "values": r.values,
                "reported_at": now,
            }
        )
        region = get_field(r.ent, "region_code")
        events.append(
            (
                ev.INDICATORS_REPORTED,
                uscc,
                ev.IndicatorsReported(
                    uscc=uscc,
                    region_code=region,
                    year=r.year,
                    revision=revision,
                    source=r.source,
                    reported_at=now,
                    enterprise=ev.EnterpriseBrief(
                        name=get_field(r.ent, "name"),
                        founded_on=get_field(r.ent, "founded_on"),
                        industry_code=get_field(r.ent, "industry_code"),
                        is_manufacturing=get_field(r.ent, "is_manufacturing"),
                        scale=get_field(r.ent, "scale"),
                    ),
                    indicators=full,
                ),
                region,
            )
        )
        audits.append(
            audit_row(
                backbone, actor, "indicators.report", "indicators", f"{uscc}/{r.year}/{revision}",
                after={"source": r.source, "values": r.values},
            )
        )
        results.append((revision, effective, now))
    for uscc, (ent, scale) in rescaled.items():
        version = await repo.set_derived_scale(session, uscc, scale)
        if version is None:  # not stored yet (demo rows are inserted with their derived scale)
            continue
        _set(ent, version=version)
        events.append((ev.UPDATED, uscc, facts_payload(ent), get_field(ent, "region_code")))
        audits.append(
            audit_row(
                backbone, actor, "indicators.report", "indicators", uscc,
                after={"scale": scale, "scale_source": "derived", "version": version},
            )
        )
    await repo.insert_revisions(session, inserts)
    await publish(session, events)
    await record_audits(session, backbone, audits)
    return results


# ---------------------------------------------------------------- API use cases


def check_year(year: int) -> None:
    if not 2000 <= year <= datetime.now(UTC).year + 1:
        raise field_error("year", "年度超出范围 (2000 至明年)")


def resolve_source(principal: Principal, requested: str | None) -> str:
    if principal.role == Role.AGENCY:
        if requested is None:
            return f"agency:{principal.sub}"
        if not requested.startswith("agency:") or len(requested) <= len("agency:"):
            raise field_error("source", "部门数据来源须为 agency:<机构名>")
        return requested
    if requested not in (None, SELF_REPORT):
        if requested.startswith("agency:"):
            raise Problem(
                403,
                "只有部门(agency)角色可以提交 agency 来源的数据",
                errors=[{"field": "source", "message": "无权使用 agency 来源"}],
            )
        raise field_error("source", "数据来源须为 self_report 或 agency:<机构名>")
    return SELF_REPORT


def effective_view(uscc: str, year: int, revs: list[IndicatorRevision], history: bool) -> dict[str, Any]:
    eff = effective_values([(r.source, r.values) for r in revs])
    return {
        "uscc": uscc,
        "year": year,
        "revision": revs[-1].revision,
        "reported_at": revs[-1].reported_at,
        "sources": sorted({r.source for r in revs}),
        "indicators": published(IndicatorSet.model_validate(eff)),
        "history": [
            {"revision": r.revision, "source": r.source, "actor": r.actor, "reported_at": r.reported_at,
             "values": r.values}
            for r in revs
        ]
        if history
        else None,
    }


async def put(
    session: AsyncSession, principal: Principal, uscc: str, year: int, body: IndicatorsIn
) -> dict[str, Any]:
    """One report by the API: checked, stored as a revision, the effective set returned."""
    check_year(year)
    if principal.role not in (Role.ENTERPRISE, Role.AGENCY) and not can_write(principal):
        raise Problem(403, "当前角色无权报送指标")
    source = resolve_source(principal, body.source)
    if err := local_indicators_error(body.indicators.local_indicators):
        raise field_error("indicators.local_indicators", err)
    errors = consistency_errors(body.indicators)
    if errors:
        raise Problem(
            422,
            "; ".join(f"indicators.{f}: {m}" for f, m in errors),
            errors=[{"field": f"indicators.{f}", "message": m} for f, m in errors],
        )
    ent = await ents.get_visible(session, principal, uscc, for_update=True)
    if ent.status != "active":
        raise Problem(409, "企业已注销,不能报送指标")
    values = stored_values(body.indicators)
    [(revision, effective, at)] = await report_indicators(
        session, principal, principal.sub, [IndicatorReport(ent, year, source, values)]
    )
    revs = await repo.revisions(session, ent.uscc, year)
    return {
        "uscc": ent.uscc,
        "year": year,
        "revision": revision,
        "reported_at": at,
        "sources": sorted({r.source for r in revs}),
        "indicators": published(IndicatorSet.model_validate(effective)),
    }


async def list_years(session: AsyncSession, principal: Principal, uscc: str) -> list[dict[str, Any]]:
    ent = await ents.get_visible(session, principal, uscc)
    by_year: dict[int, list[IndicatorRevision]] = {}
    for r in await repo.revisions(session, ent.uscc):
        by_year.setdefault(r.year, []).append(r)
    return [effective_view(ent.uscc, y, rs, False) for y, rs in sorted(by_year.items(), reverse=True)]


async def get_year(
    session: AsyncSession, principal: Principal, uscc: str, year: int, history: bool
) -> dict[str, Any]:
    check_year(year)
    ent = await ents.get_visible(session, principal, uscc)
    revs = await repo.revisions(session, ent.uscc, year)
    if not revs:
        raise Problem(404, f"{year} 年度尚无指标数据 (no indicators for this year)")
    return effective_view(ent.uscc, year, revs, history)

"""Handlers of the events the evaluation service consumes (registry and agency feeds)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.app import credit
from services.evaluation.app.evaluating import Subject, any_text, evaluate_and_store, evaluate_and_store_many
from services.evaluation.app.recognition import revoke
from services.evaluation.config import get_config
from services.evaluation.db.models import Application, Enterprise, IndicatorReport, backbone
from services.evaluation.domain import workflow as wf
from services.evaluation.domain.credit import CREDIT_METRICS
from services.evaluation.events.agency_handlers import AGENCY_HANDLERS
from services.evaluation.events.commissioner_handlers import COMMISSIONER_HANDLERS
from services.evaluation.events.contracts import (
    DEREGISTERED,
    INDICATORS,
    LISTING,
    REGISTERED,
    UPDATED,
    Deregistered,
    EnterpriseEvent,
    IndicatorsReported,
    ListingRecorded,
)
from shared.audit import record_audit
from shared.events.envelope import CloudEvent


async def _upsert_enterprise(session: AsyncSession, values: dict[str, Any], version: int | None) -> None:
    stmt = insert(Enterprise).values(**values)
    update_cols = {k: stmt.excluded[k] for k in values if k != "uscc"}
    where = None
    if version is not None and "version" in values:
        where = Enterprise.version <= stmt.excluded.version
    await session.execute(stmt.on_conflict_do_update(index_elements=["uscc"], set_=update_cols, where=where))


def _enterprise_values(p: EnterpriseEvent) -> dict[str, Any]:
    values: dict[str, Any] = {
        "uscc": p.uscc,
        "name": p.name,
        "region_code": p.region_code,
        "industry_code": p.industry_code,
        "is_manufacturing": p.is_manufacturing,
        "founded_on": p.founded_on,
        "scale": p.scale,
        "version": p.version,
        "updated_at": datetime.now().astimezone(),
    }
    if p.status == "deregistered":
        values["status"] = "deregistered"
    return values


async def on_enterprise(session: AsyncSession, event: CloudEvent) -> None:
    p = EnterpriseEvent.model_validate(event.data)
    await _upsert_enterprise(session, _enterprise_values(p), p.version)


_ENTERPRISE_BATCH = TypeAdapter(list[EnterpriseEvent])


async def on_enterprise_many(session: AsyncSession, events: list[CloudEvent]) -> None:
    """A run of ``enterprise.registered``/``updated`` events as :func:`on_enterprise` applies them one by one: in
    waves where each enterprise appears once (its n-th event in the n-th wave, so its events keep their order),
    one multi-row upsert per wave and set of columns (a registry demo load or import publishes thousands)."""
    waves: list[dict[tuple[str, ...], list[dict[str, Any]]]] = []
    seen: dict[str, int] = {}
    for p in _ENTERPRISE_BATCH.validate_python([event.data for event in events]):
        values = _enterprise_values(p)
        wave = seen.get(p.uscc, 0)
        seen[p.uscc] = wave + 1
        if wave == len(waves):
            waves.append({})
        waves[wave].setdefault(tuple(values), []).append(values)
    for wave_rows in waves:
        for columns, rows in wave_rows.items():
            stmt = insert(Enterprise)
            stmt = stmt.on_conflict_do_update(
                index_elements=["uscc"],
                set_={k: stmt.excluded[k] for k in columns if k != "uscc"},
                where=Enterprise.version <= stmt.excluded.version,
            )
            await session.execute(stmt, rows)


async def on_deregistered(session: AsyncSession, event: CloudEvent) -> None:
    p = Deregistered.model_validate(event.data)
    await _upsert_enterprise(
        session,
        {
            "uscc": p.uscc,
            "region_code": p.region_code,
            "status": "deregistered",
            "version": p.version,
            "deregistered_at": datetime.now().astimezone(),
        },
        None,
    )
    open_apps = (
        await session.execute(
            select(Application)
            .where(Application.uscc == p.uscc, Application.state.not_in([s.value for s in wf.TERMINAL]))
            .with_for_update()
        )
    ).scalars().all()
    for app in open_apps:
        before = app.state
        app.state = wf.State.WITHDRAWN.value
        app.history = [
            *app.history,
            {"action": "withdraw", "by": "system", "at": datetime.now().astimezone().isoformat(),
             "comment": f"企业已注销,申请自动撤回 ({p.reason or ''})"},
        ]
        await record_audit(
            session, backbone, None, "application.withdraw", "application", str(app.id),
            before={"state": before}, after={"state": app.state, "reason": "enterprise deregistered"},
        )


def _upsert_report() -> Any:
    """The report upsert, built once (bound parameters: compiled once, not per event)."""
    stmt = insert(IndicatorReport)
    return stmt.on_conflict_do_update(
        index_elements=["uscc", "year"],
        set_={
            "revision": stmt.excluded.revision,
            "region_code": stmt.excluded.region_code,
            "indicators": stmt.excluded.indicators,
            "reported_at": stmt.excluded.reported_at,
        },
        where=IndicatorReport.revision <= stmt.excluded.revision,
    ).returning(IndicatorReport.revision)


_UPSERT_REPORT = _upsert_report()


def _apply_profile(ent: Enterprise, e: Any) -> None:
    """An indicator report's enterprise profile onto a known enterprise (what the report does not say is kept)."""
    ent.founded_on = e.founded_on or ent.founded_on
    ent.industry_code = e.industry_code or ent.industry_code
    if e.is_manufacturing is not None:
        ent.is_manufacturing = e.is_manufacturing
    ent.name = e.name or ent.name


def _new_enterprise(p: IndicatorsReported) -> Enterprise:
    e = p.enterprise
    return Enterprise(
        uscc=p.uscc,
        region_code=p.region_code,
        name=e.name if e else None,
        founded_on=e.founded_on if e else None,
        industry_code=e.industry_code if e else None,
        is_manufacturing=e.is_manufacturing if e else None,
        scale=e.scale if e else None,
        status="active",
        version=0,
    )


def _report_values(p: IndicatorsReported) -> dict[str, Any]:
    return {"uscc": p.uscc, "year": p.year, "revision": p.revision, "region_code": p.region_code,
            "indicators": p.indicators.model_dump(mode="json"), "reported_at": p.reported_at}


async def on_indicators(session: AsyncSession, event: CloudEvent) -> None:
    p = IndicatorsReported.model_validate(event.data)
    ent = await session.get(Enterprise, p.uscc, with_for_update=True)
    if ent is None:
        session.add(_new_enterprise(p))
        await session.flush()
    elif ent.status == "deregistered":
        return
    elif p.enterprise is not None:
        _apply_profile(ent, p.enterprise)
    applied = (await session.execute(_UPSERT_REPORT, _report_values(p))).first()
    if applied is None:
        return  # a stale revision: the newer one was evaluated already
    await evaluate_and_store(session, p.uscc, p.year, get_config().decision_date())


_INDICATORS_BATCH = TypeAdapter(list[IndicatorsReported])
_REPORTS_PER_STATEMENT = 1000


async def on_indicators_many(session: AsyncSession, events: list[CloudEvent]) -> None:
    """A run of ``indicators.reported`` events as :func:`on_indicators` applies them one by one (a demo load or a
    reporting deadline publishes thousands): in waves where each enterprise appears once (its n-th event in the
    n-th wave), per wave one read of the enterprises, multi-row report upserts and the evaluations of the reports
    applied through :func:`evaluate_and_store_many` (one read per table for the wave)."""
    waves: list[list[tuple[CloudEvent, IndicatorsReported]]] = []
    seen: dict[str, int] = {}
    for event, p in zip(events, _INDICATORS_BATCH.validate_python([event.data for event in events]), strict=True):
        wave = seen.get(p.uscc, 0)
        seen[p.uscc] = wave + 1
        if wave == len(waves):
            waves.append([])
        waves[wave].append((event, p))
    as_of = get_config().decision_date()
    for run in waves:
        ents = {e.uscc: e for e in (await session.execute(
            select(Enterprise).where(Enterprise.uscc == any_text([p.uscc for _, p in run]))
            .with_for_update().execution_options(populate_existing=True))).scalars()}
        live: list[tuple[CloudEvent, IndicatorsReported]] = []
        for event, p in run:
            ent = ents.get(p.uscc)
            if ent is None:
                session.add(_new_enterprise(p))
            elif ent.status == "deregistered":
                continue
            elif p.enterprise is not None:
                _apply_profile(ent, p.enterprise)
            live.append((event, p))
        await session.flush()
        applied: set[tuple[str, int]] = set()
        for i in range(0, len(live), _REPORTS_PER_STATEMENT):
            chunk = [_report_values(p) for _, p in live[i:i + _REPORTS_PER_STATEMENT]]
            stmt = insert(IndicatorReport).values(chunk)
            stmt = stmt.on_conflict_do_update(
                index_elements=["uscc", "year"],
                set_={k: stmt.excluded[k] for k in ("revision", "region_code", "indicators", "reported_at")},
                where=IndicatorReport.revision <= stmt.excluded.revision,
            ).returning(IndicatorReport.uscc, IndicatorReport.year)
            applied.update((u, y) for u, y in (await session.execute(stmt)).all())
        # stale revisions were not applied: the newer one was evaluated already
        await evaluate_and_store_many(session, [
            Subject(p.uscc, p.year, (event.id, event.correlationid or event.id))
            for event, p in live if (p.uscc, p.year) in applied], as_of)


async def on_listing(session: AsyncSession, event: CloudEvent) -> None:
    p = ListingRecorded.model_validate(event.data)
    if p.listing in CREDIT_METRICS:  # 经营异常 / 严重失信: the credit feed's effect (app/credit.py)
        reason = p.evidence if isinstance(p.evidence, str) else str(p.evidence or p.listing)
        await credit.listed(session, uscc=p.uscc, region_code=p.region_code, agency=p.agency or "部门",
                            listing=p.listing, listed_on=p.recorded_on, reason=reason, decision_no=None)
        return
    ground = wf.LISTING_TO_GROUND.get(p.listing)
    if ground is None:
        await record_audit(
            session, backbone, None, "listing.noted", "enterprise", p.uscc,
            after={"listing": p.listing, "agency": p.agency},
        )
        return
    evidence = p.evidence if isinstance(p.evidence, str) else str(p.evidence)
    evidence = f"{p.agency or '部门'}: {evidence}"
    await revoke(session, None, p.uscc, ground, evidence, None, p.recorded_on, all_titles=True)


# consecutive events of these types are applied set-based (shared.events.consumer; equal effect, tested)
BATCH_HANDLERS = {REGISTERED: on_enterprise_many, UPDATED: on_enterprise_many, INDICATORS: on_indicators_many}

HANDLERS = {
    REGISTERED: on_enterprise,
    UPDATED: on_enterprise,
    DEREGISTERED: on_deregistered,
    INDICATORS: on_indicators,
    LISTING: on_listing,
    **AGENCY_HANDLERS,  # 信用 feed and 整体迁入 (events/agency_handlers.py)
    **COMMISSIONER_HANDLERS,  # notification's commissioner events: commissioner scope
}

"""The recognition workflow's use cases (申报 → 县 → 市 → 省 → 公示 → 公告): each function is one
transaction's worth of work in the caller's transaction (the router opens it), audited, with its events in
the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.app.access import (
    deciding_level,
    require_official_level,
    visible_application,
    visible_enterprise,
)
from services.evaluation.app.credit import check_not_listed
from services.evaluation.app.evaluating import build_facts, evaluation_view, jsonable, run_engine
from services.evaluation.app.evaluating import titles_of as held_titles_of
from services.evaluation.app.recognition import recognition_view
from services.evaluation.app.title_rules import ruleset_for
from services.evaluation.config import get_config
from services.evaluation.db import applications as applications_db
from services.evaluation.db import recognitions as recognitions_db
from services.evaluation.db.models import Application, Enterprise, Evaluation, Objection, Recognition, backbone
from services.evaluation.domain import workflow as wf
from services.evaluation.events.contracts import (
    APPLICATION_SUBMITTED,
    PUBLICITY_STARTED,
    REVIEW_DECIDED,
    TIER_RECOGNISED,
    ApplicationSubmitted,
    PublicityStarted,
    ReviewDecided,
    TierRecognised,
)
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.events.outbox import emit
from shared.indicators import IndicatorSet
from shared.problems import Problem, field_error, not_found

STAGE_ACTION = {
    "county": wf.Action.REVIEW_COUNTY,
    "city": wf.Action.REVIEW_CITY,
    "province": wf.Action.REVIEW_PROVINCE,
    "national": wf.Action.RECORD_NATIONAL,
}


# ---------------------------------------------------------------- views


def application_view(
    app: Application,
    open_objections: int = 0,
    objections: list[Objection] | None = None,
    unmet: list[str] | None = None,
) -> dict[str, Any]:
    """The application as the API shows it and the audit log records it, with the actions allowed next.

    ``unmet``: the prerequisites unmet today under the deciding rule set, when a next step checks them
    (:func:`present`); then neither the announcement nor an approval at the deciding stage is offered."""
    state = wf.State(app.state)
    met = not unmet
    out: dict[str, Any] = {
        "id": str(app.id),
        "uscc": app.uscc,
        "region_code": app.region_code,
        "tier": app.tier,
        "level": app.level,
        "batch_year": app.batch_year,
        "state": app.state,
        "state_zh": wf.STATE_ZH[state],
        "is_recheck": app.is_recheck,
        "nominated": app.nominated,
        "renews_recognition_id": str(app.renews_recognition_id) if app.renews_recognition_id else None,
        "evaluation_id": str(app.evaluation_id) if app.evaluation_id else None,
        "ruleset_id": app.ruleset_id,
        "submitted_by": app.submitted_by,
        "publicity_starts_on": app.publicity_starts_on.isoformat() if app.publicity_starts_on else None,
        "publicity_ends_on": app.publicity_ends_on.isoformat() if app.publicity_ends_on else None,
        "recognition_id": str(app.recognition_id) if app.recognition_id else None,
        "history": app.history,
        "allowed_actions": [a.value for a in wf.allowed_actions(state, app.level, open_objections, met)],
        "allowed_decisions": wf.allowed_decisions(state, app.level, open_objections, met),
        "unmet_prerequisites": unmet,
    }
    if objections is not None:
        out["objections"] = [
            {
                "id": str(o.id),
                "content": o.content,
                "status": o.status,
                "outcome": o.outcome,
                "resolution": o.resolution,
                "lodged_by": o.lodged_by,
            }
            for o in objections
        ]
    return out


async def present(
    session: AsyncSession, app: Application, objections: list[Objection] | None = None
) -> dict[str, Any]:
    """:func:`application_view` with the open objections counted and, when a next step checks them (the deciding
    review, the announcement), the prerequisites evaluated today under the deciding rule set."""
    state = wf.State(app.state)
    if objections is not None:
        open_count = sum(o.status == "open" for o in objections)
    elif state == wf.State.PUBLICITY:
        open_count = await applications_db.open_objection_count(session, app.id)
    else:
        open_count = 0
    unmet = None
    if wf.prerequisites_matter(state, app.level, open_count):
        unmet, _, _ = await check_prerequisites(session, app, get_config().decision_date())
    return application_view(app, open_count, objections, unmet)


def _conflict(exc: wf.InvalidTransition, detail: str | None = None, **extra: Any) -> Problem:
    allowed = [a.value for a in exc.allowed]
    state_zh, actions = wf.STATE_ZH[exc.state], ", ".join(allowed) or "无"
    default = f"当前状态「{state_zh}」不允许执行 {exc.action.value};允许的操作: {actions}"
    return Problem(
        409,
        detail or default,
        state=exc.state.value,
        allowed_transitions=allowed,
        **extra,
    )


async def _open_objections_problem(session: AsyncSession, app: Application, exc: wf.InvalidTransition) -> Problem:
    """409 for an announcement while objections are open, naming each (id, reason, who lodged it)."""
    still_open = [o for o in await applications_db.objections_of(session, app.id) if o.status == "open"]
    named = ";".join(f"异议 {o.id}(理由:{o.content})" for o in still_open)
    return _conflict(
        exc,
        f"公示期异议尚未处理,不能公告: {named};请先处理异议 (resolve_objection)",
        open_objections=[{"id": str(o.id), "content": o.content, "lodged_by": o.lodged_by} for o in still_open],
    )


def no_admin(principal: Principal, what: str) -> None:
    """Separation of duties (issue 16): the admin manages configuration (rule sets) but takes no step in a
    recognition; 403 with the reason."""
    if principal.role == Role.ADMIN:
        raise Problem(403, f"系统管理员负责配置管理,不能办理认定环节「{what}」"
                           "(separation of duties: admin takes no step)")


def _step(app: Application, principal: Principal, action: str, **extra: Any) -> None:
    app.history = [
        *app.history,
        {"action": action, "by": principal.sub, "role": principal.role.value,
         "at": datetime.now(UTC).isoformat(), **extra},
    ]
    app.updated_at = datetime.now(UTC)


# ---------------------------------------------------------------- prerequisites


async def check_prerequisites(
    session: AsyncSession, app: Application, decision_date: date
) -> tuple[list[str], dict[str, Any] | None, str | None]:
    """Evaluate the application under the rule set that decides its tier and title level on ``decision_date``
    (``app/title_rules.py``); return the unmet prerequisites (Chinese), the evaluation and the rule set's id
    (no deciding rule set: nothing to check)."""
    rs = await ruleset_for(session, tier=app.tier, level=app.level, region_code=app.region_code, on=decision_date)
    if rs is None:
        return [], None, None
    ent = await session.get(Enterprise, app.uscc)
    report = await applications_db.latest_report(session, app.uscc)
    indicators = IndicatorSet.model_validate(report.indicators) if report else IndicatorSet()
    facts = build_facts(
        indicators,
        await held_titles_of(session, app.uscc),
        region_code=app.region_code,
        reporting_year=report.year if report else decision_date.year - 1,
        founded_on=ent.founded_on if ent else None,
        industry_code=ent.industry_code if ent else None,
        is_manufacturing=ent.is_manufacturing if ent else None,
        is_recheck=app.is_recheck,
    )
    result = jsonable(run_engine(rs, facts, decision_date))
    unmet: list[str] = []
    for p in result.get("prerequisites") or []:
        if isinstance(p, dict) and p.get("applicable", True) and p.get("met") is False:
            name = p.get("name") or p.get("code") or "前置称号"
            reason = p.get("reason") or p.get("detail") or ""
            unmet.append(f"{name}: {reason}".rstrip(": "))
    return unmet, result, str(rs.id)


def _prereq_problem(unmet: list[str], decision_date: date) -> Problem:
    return Problem(
        409,
        f"决定日 {decision_date.isoformat()} 前置称号条件不满足,不能认定: " + ";".join(unmet),
        unmet_prerequisites=unmet,
    )


# ---------------------------------------------------------------- submission and reading


async def _check_recheck(
    session: AsyncSession, uscc: str, tier: str, recheck_of: uuid.UUID, today: date
) -> Recognition:
    """The title a recheck (复核) renews: the enterprise's own, active, with the yearly data kept up."""
    renews = await session.get(Recognition, recheck_of)
    if renews is None or renews.uscc != uscc or renews.tier != tier:
        raise field_error("recheck_of", "复核对象不存在或与申报企业、称号不符")
    if renews.status != "active":
        raise Problem(409, f"称号状态为 {renews.status},不能复核")
    years = range(renews.valid_from.year, min(renews.valid_to.year, today.year))
    have = await applications_db.report_years(session, uscc)
    missing = [y for y in years if y not in have and (y - 1) not in have]
    if missing:
        raise Problem(
            409,
            f"有效期内未按年度更新数据(缺少 {', '.join(map(str, missing))} 年),取消复核资格",
            missing_years=missing,
        )
    return renews


async def submit(
    session: AsyncSession,
    principal: Principal,
    *,
    uscc: str,
    tier: str,
    level: str | None,
    batch_year: int,
    recheck_of: uuid.UUID | None,
) -> dict[str, Any]:
    """An application by the enterprise itself or nominated by its county; its latest evaluation attached."""
    no_admin(principal, "申报")
    if principal.role not in (Role.ENTERPRISE, Role.COUNTY):
        raise Problem(403, "只有企业本身或所在县(市、区)主管部门可以提交申报 (enterprise or county official)")
    today = get_config().decision_date()
    ent = await visible_enterprise(session, principal, uscc)
    if principal.role == Role.COUNTY and not principal.covers_region(ent.region_code):
        raise not_found("企业")
    if ent.status == "deregistered":
        raise Problem(409, "企业已注销,不能申报 (enterprise deregistered)")
    ban = await recognitions_db.active_ban(session, uscc, today)
    if ban is not None:
        raise Problem(
            409,
            f"企业因「{wf.REVOCATION_GROUNDS.get(ban.ground, ban.ground)}」被撤销称号,"
            f"{ban.banned_until.isoformat()} 前不得再次申报 (barred from applying)",
            banned_until=ban.banned_until.isoformat(),
        )
    await check_not_listed(session, uscc, ent.region_code, tier, today)  # 严重失信 / 经营异常 (app/credit.py)
    closed = (wf.State.REJECTED.value, wf.State.WITHDRAWN.value)
    dup = await applications_db.pending_duplicate(session, uscc, tier, batch_year, closed)
    if dup is not None:
        raise Problem(409, "该企业本批次已有同一称号的申请 (duplicate application)", application_id=str(dup))
    renews = None if recheck_of is None else await _check_recheck(session, uscc, tier, recheck_of, today)
    level = level or wf.default_level(tier)
    # the evaluation attached is the one under the rule set that decides this title (tier + level, per province)
    deciding = await ruleset_for(session, tier=tier, level=level, region_code=ent.region_code, on=today)
    latest_eval = None if deciding is None else await applications_db.latest_evaluation(
        session, uscc, tier, str(deciding.id)
    )
    app = Application(
        id=uuid.uuid4(),
        uscc=uscc,
        region_code=ent.region_code,
        tier=tier,
        level=level,
        batch_year=batch_year,
        state=wf.State.SUBMITTED.value,
        is_recheck=renews is not None,
        nominated=principal.role == Role.COUNTY,
        renews_recognition_id=renews.id if renews else None,
        evaluation_id=latest_eval.id if latest_eval else None,
        ruleset_id=str(deciding.id) if deciding is not None else None,
        submitted_by=principal.sub,
        history=[],
    )
    _step(app, principal, "submit", nominated=app.nominated)
    session.add(app)
    await session.flush()
    await record_audit(session, backbone, principal, "application.submit", "application", str(app.id),
                       after=application_view(app))
    await emit(
        session, backbone, APPLICATION_SUBMITTED, app.uscc,
        ApplicationSubmitted(application_id=str(app.id), uscc=app.uscc, region_code=app.region_code,
                             tier=app.tier, level=app.level, batch_year=app.batch_year),
        regioncode=app.region_code,
    )
    view = await present(session, app)
    view["evaluation"] = _evaluation_brief(latest_eval)
    return view


def _evaluation_brief(row: Evaluation | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"ruleset_id": row.ruleset_id, "eligible": row.eligible,
            "score": None if row.score is None else f"{row.score:.2f}"}


async def listing(
    session: AsyncSession,
    principal: Principal,
    *,
    state: str | None = None,
    tier: str | None = None,
    batch_year: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The applications the caller may see: an enterprise its own, a commissioner those of the enterprises
    assigned to them, an official those of the territory."""
    uscc = territory = commissioner = None
    if principal.role == Role.ENTERPRISE:
        uscc = principal.uscc
    elif principal.role == Role.COMMISSIONER:
        commissioner = principal.sub
    elif principal.role != Role.ADMIN:
        territory = principal.region
    rows = await applications_db.listing(session, uscc=uscc, territory=territory, commissioner=commissioner,
                                         state=state, tier=tier, batch_year=batch_year, limit=limit)
    return [await present(session, a) for a in rows]


async def detail(session: AsyncSession, principal: Principal, app_id: uuid.UUID) -> dict[str, Any]:
    """One application with its objections, the allowed actions and its attached evaluation (explained)."""
    app = await visible_application(session, principal, app_id, lock=False)
    objections = await applications_db.objections_of(session, app.id)
    evaluation = await session.get(Evaluation, app.evaluation_id) if app.evaluation_id else None
    view = await present(session, app, objections)
    if evaluation is not None:
        view["evaluation"] = evaluation_view(evaluation)
    return view


# ---------------------------------------------------------------- reviews, publicity, objections


async def review(
    session: AsyncSession, principal: Principal, app_id: uuid.UUID, *, stage: str, decision: str, comment: str
) -> dict[str, Any]:
    """One review step; the deciding stage's approval checks the prerequisites and opens publicity."""
    action = STAGE_ACTION[stage]
    cfg = get_config()
    today = cfg.decision_date()
    no_admin(principal, "审核")
    app = await visible_application(session, principal, app_id)
    if principal.role == Role.ENTERPRISE:
        raise Problem(403, "企业不能审核申请 (enterprises cannot review)")
    require_official_level(principal, wf.reviewer_level(action) or stage, f"{stage} 环节审核")
    try:
        outcome = wf.transition(wf.State(app.state), action, app.level, wf.Decision(decision),
                                await applications_db.open_objection_count(session, app.id))
    except wf.InvalidTransition as exc:
        raise _conflict(exc) from exc
    conflict = wf.duty_conflict(app.history, principal.sub, stage)
    if conflict is not None:
        raise Problem(403, conflict)
    # every review is taken under the rule set that decides the title today (recorded in the history)
    if outcome.final_decision and decision == "approved":
        unmet, _, deciding = await check_prerequisites(session, app, today)
        if unmet:
            raise _prereq_problem(unmet, today)
    else:
        rs = await ruleset_for(session, tier=app.tier, level=app.level, region_code=app.region_code, on=today)
        deciding = None if rs is None else str(rs.id)
    before = application_view(app)
    app.ruleset_id = deciding or app.ruleset_id
    app.state = outcome.state.value
    _step(app, principal, f"review_{stage}", decision=decision, comment=comment, ruleset_id=app.ruleset_id)
    if outcome.publicity_opened:
        app.publicity_starts_on, app.publicity_ends_on = wf.publicity_window(today, cfg.publicity_working_days)
    await record_audit(session, backbone, principal, f"application.review.{stage}", "application",
                       str(app.id), before=before, after=application_view(app))
    await emit(
        session, backbone, REVIEW_DECIDED, app.uscc,
        ReviewDecided(application_id=str(app.id), uscc=app.uscc, region_code=app.region_code, tier=app.tier,
                      stage=stage, decision=decision, comment=comment),
        regioncode=app.region_code,
    )
    if outcome.publicity_opened:
        assert app.publicity_starts_on and app.publicity_ends_on
        await emit(
            session, backbone, PUBLICITY_STARTED, app.uscc,
            PublicityStarted(application_id=str(app.id), uscc=app.uscc, region_code=app.region_code,
                             tier=app.tier, starts_on=app.publicity_starts_on, ends_on=app.publicity_ends_on),
            regioncode=app.region_code,
        )
    return await present(session, app)


async def lodge_objection(session: AsyncSession, principal: Principal, app_id: uuid.UUID, content: str) -> Objection:
    """An objection lodged during publicity (公示期异议)."""
    no_admin(principal, "公示期异议登记")
    app = await visible_application(session, principal, app_id)
    try:
        wf.transition(wf.State(app.state), wf.Action.LODGE_OBJECTION, app.level,
                      open_objections=await applications_db.open_objection_count(session, app.id))
    except wf.InvalidTransition as exc:
        raise _conflict(exc) from exc
    obj = Objection(id=uuid.uuid4(), application_id=app.id, lodged_by=principal.sub, content=content, status="open")
    session.add(obj)
    _step(app, principal, "lodge_objection", objection_id=str(obj.id))
    await session.flush()
    await record_audit(session, backbone, principal, "objection.lodge", "application", str(app.id),
                       after={"objection_id": str(obj.id), "content": content})
    return obj


async def resolve_objection(
    session: AsyncSession, principal: Principal, app_id: uuid.UUID, objection_id: uuid.UUID, *, outcome: str,
    resolution: str,
) -> dict[str, Any]:
    """Resolve an objection; an upheld one rejects the application."""
    no_admin(principal, "异议处理")
    app = await visible_application(session, principal, app_id)
    require_official_level(principal, deciding_level(app.level), "异议处理")
    obj = await session.get(Objection, objection_id, with_for_update=True)
    if obj is None or obj.application_id != app.id:
        raise not_found("异议")
    if obj.status != "open":
        raise Problem(409, "该异议已处理 (already resolved)", allowed_transitions=[])
    obj.status, obj.outcome, obj.resolution = "resolved", outcome, resolution
    obj.resolved_by, obj.resolved_at = principal.sub, datetime.now(UTC)
    before = application_view(app)
    _step(app, principal, "resolve_objection", objection_id=str(obj.id), outcome=outcome)
    if outcome == "upheld":
        app.state = wf.State.REJECTED.value
        await emit(
            session, backbone, REVIEW_DECIDED, app.uscc,
            ReviewDecided(application_id=str(app.id), uscc=app.uscc, region_code=app.region_code,
                          tier=app.tier, stage="national" if app.level == "national" else app.level,
                          decision="rejected", comment=f"公示异议成立: {resolution}"),
            regioncode=app.region_code,
        )
    await session.flush()
    open_count = await applications_db.open_objection_count(session, app.id)
    await record_audit(session, backbone, principal, "objection.resolve", "application", str(app.id),
                       before=before, after=application_view(app, open_count))
    return await present(session, app)


# ---------------------------------------------------------------- announcement, resubmit, withdraw


async def announce(
    session: AsyncSession, principal: Principal, app_id: uuid.UUID, announced_on: date | None
) -> dict[str, Any]:
    """Announce (公告) after publicity with no open objection: the recognition, valid from the announcement."""
    no_admin(principal, "公告认定")
    announced_on = announced_on or get_config().decision_date()
    app = await visible_application(session, principal, app_id)
    require_official_level(principal, deciding_level(app.level), "公告认定")
    open_count = await applications_db.open_objection_count(session, app.id)
    try:
        wf.transition(wf.State(app.state), wf.Action.ANNOUNCE, app.level, open_objections=open_count)
    except wf.InvalidTransition as exc:
        if open_count and exc.state == wf.State.PUBLICITY:
            raise await _open_objections_problem(session, app, exc) from exc
        raise _conflict(exc) from exc
    if app.publicity_ends_on is not None and announced_on <= app.publicity_ends_on:
        raise field_error(
            "announced_on",
            f"公示期至 {app.publicity_ends_on.isoformat()},公告日期须在公示期结束之后",
            status=409,
        )
    unmet, _, deciding = await check_prerequisites(session, app, announced_on)
    if unmet:
        raise _prereq_problem(unmet, announced_on)
    # listed (严重失信 / 经营异常) since it applied: not eligible any more (app/credit.py)
    await check_not_listed(session, app.uscc, app.region_code, app.tier, announced_on, action="公告认定")
    before = application_view(app)
    app.ruleset_id = deciding or app.ruleset_id
    valid_from, valid_to = wf.validity(announced_on)
    rec = Recognition(
        id=uuid.uuid4(), uscc=app.uscc, region_code=app.region_code, tier=app.tier, level=app.level,
        ruleset_id=app.ruleset_id, batch_year=app.batch_year, application_id=app.id,
        announced_on=announced_on, valid_from=valid_from, valid_to=valid_to, status="active",
        renewal=app.is_recheck, migrated_in=False,
    )
    session.add(rec)
    if app.renews_recognition_id:
        old = await session.get(Recognition, app.renews_recognition_id, with_for_update=True)
        if old is not None and old.status == "active":
            old.status = "renewed"
            old.superseded_by = rec.id
    app.state = wf.State.RECOGNISED.value
    app.recognition_id = rec.id
    _step(app, principal, "announce", announced_on=announced_on.isoformat(), ruleset_id=app.ruleset_id)
    await session.flush()
    await record_audit(session, backbone, principal, "application.announce", "application", str(app.id),
                       before=before, after=application_view(app))
    await record_audit(session, backbone, principal, "recognition.create", "recognition", str(rec.id),
                       after=recognition_view(rec))
    await emit(
        session, backbone, TIER_RECOGNISED, rec.uscc,
        TierRecognised(recognition_id=str(rec.id), uscc=rec.uscc, region_code=rec.region_code, tier=rec.tier,
                       level=rec.level, ruleset_id=rec.ruleset_id, batch_year=rec.batch_year,
                       announced_on=announced_on, valid_from=valid_from, valid_to=valid_to,
                       renewal=rec.renewal, migrated_in=False),
        regioncode=rec.region_code,
    )
    return {"application": await present(session, app), "recognition": recognition_view(rec)}


async def applicant_action(
    session: AsyncSession, principal: Principal, app_id: uuid.UUID, action: wf.Action, comment: str
) -> dict[str, Any]:
    """Resubmit (after return) or withdraw: by the applicant enterprise or its county."""
    no_admin(principal, "重新提交或撤回")
    app = await visible_application(session, principal, app_id)
    if principal.role == Role.ENTERPRISE and principal.uscc != app.uscc:
        raise not_found("申请")
    if principal.role not in (Role.ENTERPRISE, Role.COUNTY):
        raise Problem(403, "只有申报企业或县级主管部门可以执行该操作")
    try:
        outcome = wf.transition(wf.State(app.state), action, app.level)
    except wf.InvalidTransition as exc:
        raise _conflict(exc) from exc
    before = application_view(app)
    app.state = outcome.state.value
    _step(app, principal, action.value, comment=comment)
    await record_audit(session, backbone, principal, f"application.{action.value}", "application",
                       str(app.id), before=before, after=application_view(app))
    return await present(session, app)

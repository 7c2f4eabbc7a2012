"""Recognition workflow: applications (申报/推荐) → reviews → publicity (公示) → announcement → recognitions."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.api.common import require_official_level, visible_enterprise
from services.evaluation.app.evaluating import build_facts, jsonable, run_engine, select_in_force, titles_of
from services.evaluation.app.recognition import active_ban, recognition_view, revoke
from services.evaluation.config import get_config
from services.evaluation.db.models import (
    Application,
    Enterprise,
    Evaluation,
    IndicatorReport,
    Objection,
    Recognition,
    backbone,
)
from services.evaluation.db.ruleset_store import latest_rulesets
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
from shared.deps import PrincipalDep, SessionDep, require_roles
from shared.events.outbox import emit
from shared.indicators import IndicatorSet
from shared.problems import Problem, field_error, not_found

router = APIRouter(prefix="/api/v1", tags=["recognition workflow"])

TierId = Literal["innovative", "srdi", "little_giant", "hidden_champion", "single_champion", "single_champion_product"]
LevelId = Literal["county", "city", "province", "national"]


# ---------------------------------------------------------------- views and helpers


def application_view(
    app: Application, open_objections: int = 0, objections: list[Objection] | None = None
) -> dict[str, Any]:
    state = wf.State(app.state)
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
        "submitted_by": app.submitted_by,
        "publicity_starts_on": app.publicity_starts_on.isoformat() if app.publicity_starts_on else None,
        "publicity_ends_on": app.publicity_ends_on.isoformat() if app.publicity_ends_on else None,
        "recognition_id": str(app.recognition_id) if app.recognition_id else None,
        "history": app.history,
        "allowed_actions": [a.value for a in wf.allowed_actions(state, app.level, open_objections)],
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


async def _open_objections(session: AsyncSession, app_id: uuid.UUID) -> int:
    return int(
        (
            await session.execute(
                select(func.count()).where(Objection.application_id == app_id, Objection.status == "open")
            )
        ).scalar()
        or 0
    )


async def _load(session: AsyncSession, principal: Principal, app_id: uuid.UUID, lock: bool = True) -> Application:
    q = select(Application).where(Application.id == app_id)
    if lock:
        q = q.with_for_update()
    app = (await session.execute(q)).scalar_one_or_none()
    if app is None or not principal.can_see_enterprise(app.uscc, app.region_code):
        raise not_found("申请")
    return app


def _conflict(exc: wf.InvalidTransition) -> Problem:
    allowed = [a.value for a in exc.allowed]
    return Problem(
        409,
        f"当前状态「{wf.STATE_ZH[exc.state]}」不允许执行 {exc.action.value};允许的操作: {', '.join(allowed) or '无'}",
        state=exc.state.value,
        allowed_transitions=allowed,
    )


def _step(app: Application, principal: Principal, action: str, **extra: Any) -> None:
    app.history = [
        *app.history,
        {"action": action, "by": principal.sub, "role": principal.role.value,
         "at": datetime.now(UTC).isoformat(), **extra},
    ]
    app.updated_at = datetime.now(UTC)


async def check_prerequisites(
    session: AsyncSession, app: Application, decision_date: date
) -> tuple[list[str], dict[str, Any] | None]:
    """Evaluate the tier's rule set in force at ``decision_date``; return unmet prerequisites (Chinese)."""
    stored = [rs for _, rs in await latest_rulesets(session)]
    candidates = select_in_force(stored, decision_date, app.region_code, app.tier)
    if not candidates:
        return [], None
    preferred = [rs for rs in candidates if str(getattr(rs.level, "value", rs.level)) == app.level]
    rs = (preferred or candidates)[0]
    ent = await session.get(Enterprise, app.uscc)
    report = (
        await session.execute(
            select(IndicatorReport).where(IndicatorReport.uscc == app.uscc).order_by(IndicatorReport.year.desc())
        )
    ).scalars().first()
    indicators = IndicatorSet.model_validate(report.indicators) if report else IndicatorSet()
    facts = build_facts(
        indicators,
        await titles_of(session, app.uscc),
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
    return unmet, result


def _prereq_problem(unmet: list[str], decision_date: date) -> Problem:
    return Problem(
        409,
        f"决定日 {decision_date.isoformat()} 前置称号条件不满足,不能认定: " + ";".join(unmet),
        unmet_prerequisites=unmet,
    )


# ---------------------------------------------------------------- applications


class ApplicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uscc: str = Field(min_length=18, max_length=18, description="统一社会信用代码")
    tier: TierId = Field(description="申报称号层级")
    level: LevelId | None = Field(None, description="认定级别;缺省按称号 (小巨人、单项冠军: national)")
    batch_year: int = Field(ge=2018, le=2100, description="批次年度")
    recheck_of: uuid.UUID | None = Field(None, description="复核: 到期称号的认定编号")


@router.post("/applications", status_code=201, summary="申报(企业自行申报或县级推荐)")
async def submit_application(body: ApplicationIn, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.role not in (Role.ENTERPRISE, Role.COUNTY, Role.ADMIN):
        raise Problem(403, "只有企业本身或所在县(市、区)主管部门可以提交申报 (enterprise or county official)")
    today = get_config().decision_date()
    async with session.begin():
        ent = await visible_enterprise(session, principal, body.uscc)
        if principal.role == Role.COUNTY and not principal.covers_region(ent.region_code):
            raise not_found("企业")
        if ent.status == "deregistered":
            raise Problem(409, "企业已注销,不能申报 (enterprise deregistered)")
        ban = await active_ban(session, body.uscc, today)
        if ban is not None:
            raise Problem(
                409,
                f"企业因「{wf.REVOCATION_GROUNDS.get(ban.ground, ban.ground)}」被撤销称号,"
                f"{ban.banned_until.isoformat()} 前不得再次申报 (barred from applying)",
                banned_until=ban.banned_until.isoformat(),
            )
        dup = (
            await session.execute(
                select(Application.id).where(
                    Application.uscc == body.uscc,
                    Application.tier == body.tier,
                    Application.batch_year == body.batch_year,
                    Application.state.not_in([wf.State.REJECTED.value, wf.State.WITHDRAWN.value]),
                )
            )
        ).first()
        if dup is not None:
            raise Problem(409, "该企业本批次已有同一称号的申请 (duplicate application)", application_id=str(dup[0]))
        level = body.level or wf.default_level(body.tier)
        renews: Recognition | None = None
        if body.recheck_of is not None:
            renews = await session.get(Recognition, body.recheck_of)
            if renews is None or renews.uscc != body.uscc or renews.tier != body.tier:
                raise field_error("recheck_of", "复核对象不存在或与申报企业、称号不符")
            if renews.status != "active":
                raise Problem(409, f"称号状态为 {renews.status},不能复核")
            years = range(renews.valid_from.year, min(renews.valid_to.year, today.year))
            have = set(
                (
                    await session.execute(
                        select(IndicatorReport.year).where(IndicatorReport.uscc == body.uscc)
                    )
                ).scalars()
            )
            missing = [y for y in years if y not in have and (y - 1) not in have]
            if missing:
                raise Problem(
                    409,
                    f"有效期内未按年度更新数据(缺少 {', '.join(map(str, missing))} 年),取消复核资格",
                    missing_years=missing,
                )
        latest_eval = (
            await session.execute(
                select(Evaluation)
                .where(Evaluation.uscc == body.uscc, Evaluation.tier == body.tier)
                .order_by(Evaluation.created_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        app = Application(
            id=uuid.uuid4(),
            uscc=body.uscc,
            region_code=ent.region_code,
            tier=body.tier,
            level=level,
            batch_year=body.batch_year,
            state=wf.State.SUBMITTED.value,
            is_recheck=renews is not None,
            nominated=principal.role == Role.COUNTY,
            renews_recognition_id=renews.id if renews else None,
            evaluation_id=latest_eval.id if latest_eval else None,
            ruleset_id=latest_eval.ruleset_id if latest_eval else None,
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
        view = application_view(app)
        view["evaluation"] = (
            {"ruleset_id": latest_eval.ruleset_id, "eligible": latest_eval.eligible,
             "score": None if latest_eval.score is None else f"{latest_eval.score:.2f}"}
            if latest_eval else None
        )
        return view


@router.get("/applications", summary="申请列表(本辖区)")
async def list_applications(
    session: SessionDep,
    principal: PrincipalDep,
    state: Annotated[str | None, Query(description="状态")] = None,
    tier: Annotated[str | None, Query(description="称号层级")] = None,
    batch_year: Annotated[int | None, Query(ge=2018, le=2100, description="批次年度")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    q = select(Application).order_by(Application.created_at.desc())
    if principal.role == Role.ENTERPRISE:
        q = q.where(Application.uscc == principal.uscc)
    elif principal.role != Role.ADMIN:
        level = principal.level
        prefix = {"province": principal.region[:2], "city": principal.region[:4]}.get(level, principal.region)
        q = q.where(Application.region_code.startswith(prefix))
    if state:
        q = q.where(Application.state == state)
    if tier:
        q = q.where(Application.tier == tier)
    if batch_year:
        q = q.where(Application.batch_year == batch_year)
    rows = (await session.execute(q.limit(limit))).scalars().all()
    return {"items": [application_view(a) for a in rows]}


@router.get("/applications/{app_id}", summary="申请详情(含允许的操作)")
async def get_application(app_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    app = await _load(session, principal, app_id, lock=False)
    objections = list(
        (await session.execute(select(Objection).where(Objection.application_id == app.id))).scalars().all()
    )
    evaluation = await session.get(Evaluation, app.evaluation_id) if app.evaluation_id else None
    view = application_view(app, sum(o.status == "open" for o in objections), objections)
    if evaluation is not None:
        from services.evaluation.app.evaluating import evaluation_view

        view["evaluation"] = evaluation_view(evaluation)
    return view


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: Literal["county", "city", "province", "national"] = Field(description="审核环节")
    decision: Literal["approved", "rejected", "returned"] = Field(description="审核结论")
    comment: str = Field("", max_length=2000, description="审核意见")


_STAGE_ACTION = {
    "county": wf.Action.REVIEW_COUNTY,
    "city": wf.Action.REVIEW_CITY,
    "province": wf.Action.REVIEW_PROVINCE,
    "national": wf.Action.RECORD_NATIONAL,
}


@router.post("/applications/{app_id}/reviews", summary="审核(县级 → 市级 → 省级 → 国家结果登记)")
async def review(app_id: uuid.UUID, body: ReviewIn, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    action = _STAGE_ACTION[body.stage]
    cfg = get_config()
    today = cfg.decision_date()
    async with session.begin():
        app = await _load(session, principal, app_id)
        if principal.role == Role.ENTERPRISE:
            raise Problem(403, "企业不能审核申请 (enterprises cannot review)")
        require_official_level(principal, wf.reviewer_level(action) or body.stage, f"{body.stage} 环节审核")
        state = wf.State(app.state)
        try:
            outcome = wf.transition(state, action, app.level, wf.Decision(body.decision),
                                    await _open_objections(session, app.id))
        except wf.InvalidTransition as exc:
            raise _conflict(exc) from exc
        if outcome.final_decision and body.decision == "approved":
            unmet, _ = await check_prerequisites(session, app, today)
            if unmet:
                raise _prereq_problem(unmet, today)
        before = application_view(app)
        app.state = outcome.state.value
        _step(app, principal, f"review_{body.stage}", decision=body.decision, comment=body.comment)
        if outcome.publicity_opened:
            starts, ends = wf.publicity_window(today, cfg.publicity_working_days)
            app.publicity_starts_on, app.publicity_ends_on = starts, ends
        await record_audit(session, backbone, principal, f"application.review.{body.stage}", "application",
                           str(app.id), before=before, after=application_view(app))
        await emit(
            session, backbone, REVIEW_DECIDED, app.uscc,
            ReviewDecided(application_id=str(app.id), uscc=app.uscc, region_code=app.region_code, tier=app.tier,
                          stage=body.stage, decision=body.decision, comment=body.comment),
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
        return application_view(app)


class ObjectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = Field(min_length=1, max_length=5000, description="异议内容")


@router.post("/applications/{app_id}/objections", status_code=201, summary="公示期异议登记")
async def lodge_objection(
    app_id: uuid.UUID, body: ObjectionIn, session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))],
) -> dict[str, Any]:
    async with session.begin():
        app = await _load(session, principal, app_id)
        try:
            wf.transition(wf.State(app.state), wf.Action.LODGE_OBJECTION, app.level,
                          open_objections=await _open_objections(session, app.id))
        except wf.InvalidTransition as exc:
            raise _conflict(exc) from exc
        obj = Objection(id=uuid.uuid4(), application_id=app.id, lodged_by=principal.sub, content=body.content,
                        status="open")
        session.add(obj)
        _step(app, principal, "lodge_objection", objection_id=str(obj.id))
        await session.flush()
        await record_audit(session, backbone, principal, "objection.lodge", "application", str(app.id),
                           after={"objection_id": str(obj.id), "content": body.content})
        return {"id": str(obj.id), "application_id": str(app.id), "status": "open"}


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["dismissed", "upheld"] = Field(
        description="处理结果: dismissed 异议不成立, upheld 异议成立(不予认定)"
    )
    resolution: str = Field(min_length=1, max_length=5000, description="处理说明")


def _deciding_level(app: Application) -> str:
    return "province" if app.level in ("province", "national") else app.level


@router.post("/applications/{app_id}/objections/{objection_id}/resolve", summary="异议处理")
async def resolve_objection(
    app_id: uuid.UUID, objection_id: uuid.UUID, body: ResolveIn, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    async with session.begin():
        app = await _load(session, principal, app_id)
        require_official_level(principal, _deciding_level(app), "异议处理")
        obj = await session.get(Objection, objection_id, with_for_update=True)
        if obj is None or obj.application_id != app.id:
            raise not_found("异议")
        if obj.status != "open":
            raise Problem(409, "该异议已处理 (already resolved)", allowed_transitions=[])
        obj.status, obj.outcome, obj.resolution = "resolved", body.outcome, body.resolution
        obj.resolved_by, obj.resolved_at = principal.sub, datetime.now(UTC)
        before = application_view(app)
        _step(app, principal, "resolve_objection", objection_id=str(obj.id), outcome=body.outcome)
        if body.outcome == "upheld":
            app.state = wf.State.REJECTED.value
            await emit(
                session, backbone, REVIEW_DECIDED, app.uscc,
                ReviewDecided(application_id=str(app.id), uscc=app.uscc, region_code=app.region_code,
                              tier=app.tier, stage="national" if app.level == "national" else app.level,
                              decision="rejected", comment=f"公示异议成立: {body.resolution}"),
                regioncode=app.region_code,
            )
        await session.flush()
        open_count = await _open_objections(session, app.id)
        await record_audit(session, backbone, principal, "objection.resolve", "application", str(app.id),
                           before=before, after=application_view(app, open_count))
        return application_view(app, open_count)


class AnnounceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    announced_on: date | None = Field(None, description="公告日期;缺省为今天。须在公示期结束之后")


@router.post("/applications/{app_id}/announce", summary="公告认定(公示期满且异议已处理)")
async def announce(
    app_id: uuid.UUID, body: AnnounceIn, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    announced_on = body.announced_on or get_config().decision_date()
    async with session.begin():
        app = await _load(session, principal, app_id)
        require_official_level(principal, _deciding_level(app), "公告认定")
        try:
            wf.transition(wf.State(app.state), wf.Action.ANNOUNCE, app.level,
                          open_objections=await _open_objections(session, app.id))
        except wf.InvalidTransition as exc:
            raise _conflict(exc) from exc
        if app.publicity_ends_on is not None and announced_on <= app.publicity_ends_on:
            raise field_error(
                "announced_on",
                f"公示期至 {app.publicity_ends_on.isoformat()},公告日期须在公示期结束之后",
                status=409,
            )
        unmet, _ = await check_prerequisites(session, app, announced_on)
        if unmet:
            raise _prereq_problem(unmet, announced_on)
        before = application_view(app)
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
        _step(app, principal, "announce", announced_on=announced_on.isoformat())
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
        return {"application": application_view(app), "recognition": recognition_view(rec)}


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field("", max_length=2000, description="说明")


async def _simple(
    session: AsyncSession, principal: Principal, app_id: uuid.UUID, action: wf.Action, comment: str
) -> dict[str, Any]:
    async with session.begin():
        app = await _load(session, principal, app_id)
        if principal.role == Role.ENTERPRISE and principal.uscc != app.uscc:
            raise not_found("申请")
        if principal.role not in (Role.ENTERPRISE, Role.COUNTY, Role.ADMIN):
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
        return application_view(app)


@router.post("/applications/{app_id}/resubmit", summary="退回后重新提交")
async def resubmit(app_id: uuid.UUID, body: CommentIn, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    return await _simple(session, principal, app_id, wf.Action.RESUBMIT, body.comment)


@router.post("/applications/{app_id}/withdraw", summary="撤回申请")
async def withdraw(app_id: uuid.UUID, body: CommentIn, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    return await _simple(session, principal, app_id, wf.Action.WITHDRAW, body.comment)


# ---------------------------------------------------------------- recognitions


@router.get("/enterprises/{uscc}/recognitions", summary="企业当前及历史称号")
async def enterprise_recognitions(uscc: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    rows = list(
        (
            await session.execute(
                select(Recognition).where(Recognition.uscc == uscc).order_by(Recognition.valid_from.desc())
            )
        ).scalars().all()
    )
    ent = await session.get(Enterprise, uscc)
    region = ent.region_code if ent else (rows[0].region_code if rows else None)
    if region is None or not principal.can_see_enterprise(uscc, region):
        raise not_found("企业")
    today = get_config().decision_date()
    current = [recognition_view(r) for r in rows if r.status == "active" and r.valid_from <= today <= r.valid_to]
    # announced titles whose validity starts later (公告日 in the future relative to the decision date)
    upcoming = [recognition_view(r) for r in rows if r.status == "active" and r.valid_from > today]
    shown = {c["id"] for c in current} | {u["id"] for u in upcoming}
    ban = await active_ban(session, uscc, today)
    return {
        "uscc": uscc,
        "current": current,
        "upcoming": upcoming,
        "past": [recognition_view(r) for r in rows if str(r.id) not in shown],
        "banned_until": ban.banned_until.isoformat() if ban else None,
    }


@router.get("/recognitions/{rec_id}", summary="认定详情")
async def get_recognition(rec_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    rec = await session.get(Recognition, rec_id)
    if rec is None or not principal.can_see_enterprise(rec.uscc, rec.region_code):
        raise not_found("认定")
    return recognition_view(rec)


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ground: str = Field(
        description="撤销事由 (data_fraud 数据造假, serious_dishonesty 严重失信, major_accident 重大事故, other 其他)"
    )
    evidence: str = Field(min_length=1, max_length=5000, description="证据与说明")
    revoked_on: date | None = Field(None, description="撤销日期;缺省为今天")


@router.post("/recognitions/{rec_id}/revoke", summary="撤销称号(数据造假: 撤销全部梯度称号并三年内不得申报)")
async def revoke_recognition(
    rec_id: uuid.UUID, body: RevokeIn, session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))],
) -> dict[str, Any]:
    cfg = get_config()
    if body.ground not in cfg.revocation_grounds:
        raise field_error("ground", f"撤销事由须为: {', '.join(cfg.revocation_grounds)}")
    async with session.begin():
        rec = await session.get(Recognition, rec_id, with_for_update=True)
        if rec is None or not principal.can_see_enterprise(rec.uscc, rec.region_code):
            raise not_found("认定")
        if principal.role != Role.PROVINCE:
            require_official_level(principal, _deciding_level_of(rec.level), "撤销称号")
        if rec.status != "active":
            raise Problem(409, f"称号状态为 {rec.status},不能撤销", allowed_transitions=[])
        victims = await revoke(session, rec, rec.uscc, body.ground, body.evidence, principal,
                               body.revoked_on or cfg.decision_date())
        return {"revoked": [recognition_view(v) for v in victims]}


def _deciding_level_of(level: str) -> str:
    return "province" if level in ("province", "national") else level

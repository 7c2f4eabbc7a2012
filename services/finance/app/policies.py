"""Policies: drafts by the officials of a jurisdiction, published (immutable) with ``policy.published``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.db import policies as repo
from services.finance.db.models import PolicyRow, backbone
from services.finance.domain.money import fmt
from services.finance.events import contracts as ev
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.events.outbox import emit
from shared.problems import Problem, not_found
from shared.tiers import LEVEL_NAMES, TIER_NAMES


def drafts_visible(principal: Principal, jurisdiction: str) -> bool:
    return principal.role == Role.ADMIN or (principal.is_official and principal.covers_region(jurisdiction))


def _visible(principal: Principal, row: PolicyRow) -> bool:
    # Published policies are public; drafts only for the officials of their jurisdiction.
    return row.status == "published" or drafts_visible(principal, row.jurisdiction)


def validate(data: dict[str, Any]) -> None:
    if data.get("effective_to") and data["effective_to"] < data["effective_from"]:
        raise Problem(422, "失效日期早于生效日期", errors=[{"field": "effective_to", "message": "须不早于生效日期"}])
    kind = data["kind"]
    if kind == "tier_reward" and not data.get("tiers"):
        raise Problem(422, "认定奖励须配置 tiers", errors=[{"field": "tiers", "message": "缺少称号金额"}])
    if kind == "percentage" and data.get("rate") is None:
        raise Problem(422, "比例补助须配置 rate", errors=[{"field": "rate", "message": "缺少比例"}])
    for key in data.get("tiers") or {}:
        tier, _, level = str(key).partition(":")
        if tier not in TIER_NAMES or (level and level not in LEVEL_NAMES):
            raise Problem(
                422,
                f"未知的称号或级别 {key}:称号可选 {'、'.join(TIER_NAMES)},级别可选 {'、'.join(LEVEL_NAMES)}",
                errors=[{"field": f"tiers.{key}", "message": "须为 称号 或 称号:级别,如 srdi:province"}],
            )
    if kind in ("fixed_award", "per_person") and not data.get("items"):
        raise Problem(422, "定额奖励/按人补贴须配置 items", errors=[{"field": "items", "message": "缺少项目金额"}])


async def listing(
    session: AsyncSession, principal: Principal, *, jurisdiction: str | None, kind: str | None, status: str | None
) -> list[PolicyRow]:
    rows = await repo.listing(session, jurisdiction=jurisdiction, kind=kind, status=status)
    return [r for r in rows if _visible(principal, r)]


async def get_visible(session: AsyncSession, principal: Principal, policy_id: str) -> PolicyRow:
    row = await repo.get(session, policy_id)
    if row is None or not _visible(principal, row):
        raise not_found("政策")
    return row


def _snapshot(row: PolicyRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "jurisdiction": row.jurisdiction,
        "fund": row.fund,
        "kind": row.kind,
        "status": row.status,
        "effective_from": row.effective_from.isoformat(),
        "effective_to": row.effective_to.isoformat() if row.effective_to else None,
        "document": row.document,
        "spec": row.spec,
        "version": row.version,
    }


async def create(session: AsyncSession, principal: Principal, data: dict[str, Any]) -> PolicyRow:
    """A draft; ``data`` is the validated request (``PolicyIn``)."""
    validate(data)
    policy_id = data.get("id") or f"{data['jurisdiction']}-{uuid.uuid4().hex[:10]}"
    if await repo.get(session, policy_id) is not None:
        raise Problem(409, f"政策编号 {policy_id} 已存在")
    row = PolicyRow(
        id=policy_id,
        name=data["name"],
        jurisdiction=data["jurisdiction"],
        fund=data["fund"],
        kind=data["kind"],
        status="draft",
        effective_from=data["effective_from"],
        effective_to=data.get("effective_to"),
        document=data.get("document", ""),
        spec=repo.spec_of(data),
        version=1,
        created_by=principal.sub,
    )
    session.add(row)
    await session.flush()
    await record_audit(session, backbone, principal, "policy.created", "policy", row.id, after=_snapshot(row))
    return row


async def update(session: AsyncSession, principal: Principal, policy_id: str, data: dict[str, Any]) -> PolicyRow:
    validate(data)
    row = await repo.get(session, policy_id, for_update=True)
    if row is None or not principal.covers_region(row.jurisdiction):
        raise not_found("政策")
    if data["jurisdiction"] != row.jurisdiction:
        raise Problem(422, "不能修改政策所属辖区", errors=[{"field": "jurisdiction", "message": "不可修改"}])
    if row.status != "draft":
        raise Problem(409, "已发布的政策不可修改,请新建政策并设置生效日期 (published policies are immutable)")
    before = _snapshot(row)
    row.name, row.fund, row.kind = data["name"], data["fund"], data["kind"]
    row.effective_from, row.effective_to = data["effective_from"], data.get("effective_to")
    row.document = data.get("document", "")
    row.spec, row.version, row.updated_at = repo.spec_of(data), row.version + 1, datetime.now(UTC)
    row.updated_by = principal.sub
    await record_audit(
        session, backbone, principal, "policy.updated", "policy", row.id, before=before, after=_snapshot(row)
    )
    return row


async def publish(session: AsyncSession, principal: Principal, policy_id: str) -> PolicyRow:
    row = await repo.get(session, policy_id, for_update=True)
    if row is None or not principal.covers_region(row.jurisdiction):
        raise not_found("政策")
    if row.status != "draft":
        raise Problem(409, f"政策状态为 {row.status},不能发布")
    if principal.sub in (row.created_by, row.updated_by):
        raise Problem(403, "发布人不能是起草人或最后修改人:政策须由另一名工作人员复核发布 (maker-checker)")
    row.status, row.published_at, row.updated_at = "published", datetime.now(UTC), datetime.now(UTC)
    row.published_by = principal.sub
    await record_audit(
        session, backbone, principal, "policy.published", "policy", row.id, after={"status": "published"}
    )
    await emit_policy_published(session, row)
    return row


async def emit_policy_published(session: AsyncSession, row: PolicyRow) -> None:
    """``policy.published`` for a policy row, in the caller's transaction (API publish and demo seeding)."""
    p = repo.policy_from_row(row)
    await emit(
        session,
        backbone,
        ev.POLICY_PUBLISHED,
        row.jurisdiction,
        ev.PolicyPublished(
            policy_id=row.id,
            name=row.name,
            jurisdiction=row.jurisdiction,
            kind=row.kind,
            tiers=p.tiers_list(),
            effective_from=row.effective_from,
            effective_to=row.effective_to,
            summary=(row.document or row.name)[:500],
            fund=row.fund,
            rewards=[
                ev.PolicyReward(tier=tier, level=level or None, amount=fmt(amount))
                for key, amount in sorted(p.tiers.items())
                for tier, _, level in [key.partition(":")]
            ],
        ),
        regioncode=row.jurisdiction,
    )

"""Entitlement arithmetic, pure: every step is explained in Chinese so an official can check every yuan."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from services.finance.domain.money import ZERO, q, yuan
from services.finance.domain.policy import Policy
from shared.tiers import tier_label


@dataclass(frozen=True)
class PriorAward:
    """An earlier entitlement of the same enterprise under the same policy (not rejected or cancelled)."""

    subject: str  # e.g. "tier:srdi:province"
    reference: Decimal  # the full amount the policy sets for that subject
    granted: Decimal  # what was actually granted (after deductions)
    year: int


@dataclass
class Computation:
    amount: Decimal
    rule: str
    steps: list[str] = field(default_factory=list)
    base: Decimal | None = None
    rate: Decimal | None = None
    cap: Decimal | None = None
    reference: Decimal = ZERO  # the policy's full amount for this subject (for later 从高不重复 comparisons)
    deducted: Decimal = ZERO

    def explanation(self, policy: Policy) -> dict[str, object]:
        return {
            "policy_id": policy.id,
            "policy_name": policy.name,
            "document": policy.document,
            "jurisdiction": policy.jurisdiction,
            "kind": policy.kind,
            "rule": self.rule,
            "base": None if self.base is None else str(q(self.base)),
            "rate": None if self.rate is None else str(self.rate),
            "cap": None if self.cap is None else str(q(self.cap)),
            "reference": str(q(self.reference)),
            "deducted": str(q(self.deducted)),
            "amount": str(q(self.amount)),
            "amounts_configured": policy.amounts_configured,
            "steps": list(self.steps),
        }


class NotApplicable(Exception):
    """The policy does not cover this tier / item (no entitlement at all)."""


# Rules under which nothing is due *yet*: no entitlement is recorded, so a later event can still create it.
NOT_YET_DUE = frozenset({"migrated_in_under_one_year", "migrated_in_unverified"})


def tier_subject(tier: str, level: str | None) -> str:
    """The entitlement subject of a title: ``tier:srdi:province`` (``tier:single_champion`` without a level)."""
    return f"tier:{tier}:{level}" if level else f"tier:{tier}"


def subject_tier(subject: str) -> tuple[str | None, str | None]:
    """(tier, level) of a title subject; (None, None) for a project (``project:…``)."""
    kind, _, rest = subject.partition(":")
    if kind != "tier" or not rest:
        return None, None
    tier, _, level = rest.partition(":")
    return tier, level or None


def one_year_after(day: date) -> date:
    """The same calendar day a year later (29 February → 28 February)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def tier_reward(
    policy: Policy,
    tier: str,
    level: str | None,
    *,
    prior: list[PriorAward],
    renewal: bool = False,
    migrated_in: bool = False,
    moved_in_on: date | None = None,
    as_of: date | None = None,
) -> Computation:
    """One-time reward for a new recognition, with 从高不重复 and the upgrade rule. A migrated-in enterprise
    (整体迁入) counts as newly recognised only when the policy says so and it has operated here for a year
    since ``moved_in_on`` on ``as_of`` (the day the event arrived)."""
    if policy.kind != "tier_reward":
        raise NotApplicable(f"{policy.id} 不是认定奖励政策")
    found = policy.tier_amount(tier, level)
    if found is None:
        raise NotApplicable(f"{policy.id} 未对{tier_label(tier, level)}设奖励")
    _key, full = found
    full = q(full)
    label = tier_label(tier, level)
    steps = [f"政策《{policy.name}》({policy.document or '未注明文号'}) 对{label}的一次性奖励标准为 {yuan(full)}"]
    if policy.amounts_configured:
        steps.append("注意:该金额文件未载明,为本级配置值 (amount not stated in the document: configured)")
    comp = Computation(amount=ZERO, rule="tier_reward", steps=steps, reference=full)
    if renewal:
        steps.append("本次为复核/续期认定,不属于新认定,一次性奖励不适用 → 0")
        comp.rule = "renewal_not_new"
        return comp
    if migrated_in:
        if policy.migrated_in == "excluded":
            steps.append("整体迁入企业:本政策不参照新认定执行 → 0")
            comp.rule = "migrated_in_excluded"
            return comp
        if moved_in_on is None or as_of is None:
            steps.append("整体迁入企业:迁入日期未提供,无法核验是否在本地正常经营满一年 → 暂不兑现")
            comp.rule = "migrated_in_unverified"
            return comp
        due = one_year_after(moved_in_on)
        if as_of < due:
            steps.append(
                f"整体迁入企业:{moved_in_on.isoformat()} 迁入,至 {as_of.isoformat()} 在本地经营未满一年"
                f"({due.isoformat()} 满一年)→ 暂不兑现"
            )
            comp.rule = "migrated_in_under_one_year"
            return comp
        steps.append(
            f"整体迁入企业:{moved_in_on.isoformat()} 迁入,至 {as_of.isoformat()} 已在本地正常经营满一年,"
            "参照新认定标准执行"
        )
    if policy.stacking == "cumulative" or not prior:
        if prior:
            steps.append("本政策奖励可叠加 (cumulative),不扣减以往奖励")
        else:
            steps.append("该企业在本政策下无以往奖励")
        comp.amount = full
        steps.append(f"应兑现金额 = {yuan(full)}")
        return comp
    highest = max(prior, key=lambda p: p.reference)
    granted = q(sum((p.granted for p in prior), ZERO))
    steps.append(
        "同一企业按照从高、不重复原则给予奖励 (highest_only):以往已获 "
        + "、".join(f"{p.subject}({p.year}年,标准 {yuan(p.reference)},已核定 {yuan(p.granted)})" for p in prior)
    )
    if full <= highest.reference:
        comp.rule = "highest_only_not_higher"
        steps.append(f"本次标准 {yuan(full)} 不高于以往最高标准 {yuan(highest.reference)},不重复奖励 → 0")
        return comp
    if policy.upgrade == "nothing":
        comp.rule = "upgrade_nothing"
        steps.append("升级认定:本政策规定升级不再补差 (upgrade: nothing) → 0")
        return comp
    diff = q(full - granted)
    if diff < ZERO:
        diff = ZERO
    comp.rule = "upgrade_pay_difference"
    comp.deducted = granted
    comp.amount = diff
    steps.append(f"升级认定补差 (pay_difference):{yuan(full)} − 以往已核定 {yuan(granted)} = {yuan(diff)}")
    return comp


def percentage(
    policy: Policy,
    base: Decimal,
    *,
    threshold_value: Decimal | None = None,
    previously_granted: Decimal = ZERO,
) -> Computation:
    """A rate of an approved amount, with an optional threshold and a cap per project or per enterprise."""
    if policy.kind != "percentage" or policy.rate is None:
        raise NotApplicable(f"{policy.id} 不是比例补助政策")
    base = q(base)
    comp = Computation(amount=ZERO, rule="percentage", base=base, rate=policy.rate, cap=policy.cap)
    steps = comp.steps
    steps.append(
        f"政策《{policy.name}》({policy.document or '未注明文号'}):"
        f"按{policy.base_label}的 {policy.rate * 100:.2f}% 补助"
    )
    if policy.threshold is not None:
        tv = q(threshold_value if threshold_value is not None else base)
        ok = tv > policy.threshold if policy.threshold_comparison == "gt" else tv >= policy.threshold
        word = "超过" if policy.threshold_comparison == "gt" else "达到"
        steps.append(f"门槛:投入须{word} {yuan(policy.threshold)};申报投入 {yuan(tv)} → {'满足' if ok else '不满足'}")
        if not ok:
            comp.rule = "below_threshold"
            steps.append("未达门槛 → 0")
            return comp
    raw = q(base * policy.rate)
    steps.append(f"{yuan(base)} × {policy.rate * 100:.2f}% = {yuan(raw)}")
    comp.reference = raw
    amount = raw
    if policy.cap is not None:
        cap = q(policy.cap)
        if policy.cap_scope == "enterprise":
            remaining = max(q(cap - previously_granted), ZERO)
            steps.append(
                f"每家企业封顶 {yuan(cap)},该企业在本政策下已核定 {yuan(previously_granted)},剩余额度 {yuan(remaining)}"
            )
            comp.deducted = q(previously_granted)
            if amount > remaining:
                amount = remaining
                comp.rule = "percentage_capped"
        else:
            steps.append(f"单个项目封顶 {yuan(cap)}")
            if amount > cap:
                amount = cap
                comp.rule = "percentage_capped"
    comp.amount = amount
    steps.append(f"应兑现金额 = {yuan(amount)}")
    return comp


def fixed_award(policy: Policy, item: str) -> Computation:
    if policy.kind != "fixed_award":
        raise NotApplicable(f"{policy.id} 不是定额奖励政策")
    if item not in policy.items:
        raise NotApplicable(f"{policy.id} 未设奖励项目 {item}")
    amount = q(policy.items[item])
    comp = Computation(amount=amount, rule="fixed_award", reference=amount)
    comp.steps.append(f"政策《{policy.name}》({policy.document or '未注明文号'}):{item} 定额奖励 {yuan(amount)}")
    if policy.amounts_configured:
        comp.steps.append("注意:该金额文件未载明,为本级配置值")
    comp.steps.append(f"应兑现金额 = {yuan(amount)}")
    return comp


def per_person(policy: Policy, persons: dict[str, int]) -> Computation:
    if policy.kind != "per_person":
        raise NotApplicable(f"{policy.id} 不是按人补贴政策")
    unknown = sorted(set(persons) - set(policy.items))
    if unknown:
        raise NotApplicable(f"{policy.id} 未设补贴类别 {', '.join(unknown)}")
    comp = Computation(amount=ZERO, rule="per_person")
    comp.steps.append(f"政策《{policy.name}》({policy.document or '未注明文号'}):按人数补贴培养机构")
    total = ZERO
    for item in sorted(persons):
        n = persons[item]
        if n < 0:
            raise NotApplicable("人数不能为负")
        unit = q(policy.items[item])
        sub = q(unit * n)
        comp.steps.append(f"{item}:{n} 人 × {yuan(unit)} = {yuan(sub)}")
        total += sub
    comp.amount = q(total)
    comp.reference = comp.amount
    comp.steps.append(f"应兑现金额 = {yuan(comp.amount)}")
    return comp

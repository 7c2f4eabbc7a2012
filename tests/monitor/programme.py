"""A small programme in motion as the services publish it: 丽水 (莲都区, 青田县) and 杭州 (余杭区), 2025–2026.

Figures the tests expect (year 2026, counted on a day after 2026-06-30) are written next to the events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.events.envelope import CloudEvent
from tests.monitor.conftest import event

YEAR = 2026
LIANDU, QINGTIAN, LISHUI, YUHANG = "331102", "331121", "331100", "330110"


def uscc(region: str, n: int) -> str:
    return f"91{region}{n:09d}X"


A = {i: uscc(LIANDU, i) for i in range(1, 7)}
B = {i: uscc(QINGTIAN, i) for i in range(1, 3)}
C = {i: uscc(YUHANG, i) for i in range(1, 3)}

REG, EVAL, FIN, NOTI = "registry", "evaluation", "finance", "notification"


def t(service: str, name: str) -> str:
    return f"zjtx.{service}.{name}.v1"


def _at(month: int, day: int = 1, year: int = YEAR) -> datetime:
    return datetime(year, month, day, 9, 0, tzinfo=UTC)


def registered(code: str, region: str, name: str) -> CloudEvent:
    return event(t(REG, "enterprise.registered"), code, region, {
        "uscc": code, "name": name, "region_code": region, "industry_code": "3562", "is_manufacturing": True,
        "founded_on": "2012-05-01", "scale": "small", "status": "active", "focus": {}, "liaison": None,
        "version": 1}, time=_at(1, 5, 2025))


def pool(code: str, region: str, track: str = "srdi", year: int = YEAR) -> CloudEvent:
    return event(t(REG, "pool.entered"), code, region, {
        "uscc": code, "region_code": region, "pool_id": 1, "level": "county", "pool_region": region,
        "track": track, "year": year, "reason": "rule"}, time=_at(2, 1, year))


def evaluated(code: str, region: str, tier: str, eligible: bool, score: str | None, unmet: list[str] | None = None,
              gap: str | None = None) -> CloudEvent:
    result: dict[str, Any] = {"ruleset_id": f"zj-{tier}-2026", "tier": tier, "eligible": eligible, "score": score}
    if unmet is not None:
        result["unmet"] = unmet
    if gap is not None:
        result["gaps"] = [{"code": "rd", "yuan_needed": gap}]
    return event(t(EVAL, "evaluation.completed"), code, region, {
        "uscc": code, "region_code": region, "year": YEAR, "as_of": "2026-03-01", "results": [result]},
        time=_at(3))


def recognised(rid: str, code: str, region: str, tier: str, level: str, batch: int, start: str, end: str
               ) -> CloudEvent:
    return event(t(EVAL, "tier.recognised"), code, region, {
        "recognition_id": rid, "uscc": code, "region_code": region, "tier": tier, "level": level,
        "ruleset_id": None, "batch_year": batch, "announced_on": start, "valid_from": start, "valid_to": end,
        "renewal": False, "migrated_in": False}, time=datetime.fromisoformat(start + "T10:00:00+00:00"))


def application(aid: str, code: str, region: str, tier: str = "srdi") -> CloudEvent:
    return event(t(EVAL, "application.submitted"), code, region, {
        "application_id": aid, "uscc": code, "region_code": region, "tier": tier, "level": "province",
        "batch_year": YEAR}, time=_at(4))


def review(aid: str, code: str, region: str, stage: str, decision: str, tier: str = "srdi") -> CloudEvent:
    return event(t(EVAL, "review.decided"), code, region, {
        "application_id": aid, "uscc": code, "region_code": region, "tier": tier, "stage": stage,
        "decision": decision, "comment": ""}, time=_at(5))


def entitlement(verb: str, eid: str, code: str, region: str, jurisdiction: str, amount: str) -> CloudEvent:
    return event(t(FIN, f"entitlement.{verb}"), code, region, {
        "entitlement_id": eid, "uscc": code, "region_code": region, "jurisdiction": jurisdiction,
        "policy_id": "p1", "policy_name": "专精特新一次性奖励", "kind": "one_time", "amount": amount, "year": YEAR},
        time=_at(8))


def paid(eid: str, code: str, region: str, amount: str) -> CloudEvent:
    return event(t(FIN, "disbursement.paid"), code, region, {
        "disbursement_id": "d-" + eid, "entitlement_id": eid, "uscc": code, "region_code": region,
        "amount": amount, "paid_at": "2026-09-01T00:00:00+00:00"}, time=_at(9))


def budget(jurisdiction: str, total: str, day: int = 10, amount: str | None = None) -> CloudEvent:
    """A budget change as finance publishes it: the change and the budget's total after it."""
    return event(t(FIN, "budget.changed"), jurisdiction, jurisdiction, {
        "change_id": f"b-{jurisdiction}-{day}", "jurisdiction": jurisdiction, "fund": "sme_development",
        "year": YEAR, "amount": amount or total, "total": total, "reserved": "0.00", "spent": "0.00",
        "available": total, "requested_by": "x", "approved_by": "y"}, time=_at(1, day))


def target(region: str, tier: str, n: int, measure: str = "recognised") -> CloudEvent:
    return event(t(REG, "target.set"), region, region, {
        "region_code": region, "track": tier, "measure": measure, "level": "any", "year": YEAR, "target": n},
        time=_at(1, 2))


def assigned(code: str, region: str, cid: str, name: str) -> CloudEvent:
    return event(t(NOTI, "commissioner.assigned"), code, region, {
        "uscc": code, "region_code": region, "tier": "srdi", "level": "province", "commissioner_id": cid,
        "commissioner_name": name, "previous_commissioner_id": None, "reason": "recognised"}, time=_at(7))


def events() -> list[CloudEvent]:
    out = [registered(A[i], LIANDU, f"丽水莲都示例{i}号有限公司") for i in A]
    out += [registered(B[i], QINGTIAN, f"青田示例{i}号有限公司") for i in B]
    out += [registered(C[i], YUHANG, f"杭州余杭示例{i}号有限公司") for i in C]
    out += [target(LISHUI, "srdi", 10), target(LIANDU, "srdi", 5), target("330000", "srdi", 100),
            target(LIANDU, "srdi", 8, measure="pool")]
    # 丽水 600,000 then 400,000 more (total 1,000,000); 莲都 500,000
    out += [budget(LISHUI, "600000.00"), budget(LISHUI, "1000000.00", day=20, amount="400000.00"),
            budget(LIANDU, "500000.00")]
    # 莲都 pool (srdi, 2026): A1..A5; their latest srdi evaluations
    out += [pool(A[i], LIANDU) for i in range(1, 6)]
    out += [
        evaluated(A[1], LIANDU, "srdi", False, "72.00", ["rd_ratio"], "600000.00"),
        evaluated(A[2], LIANDU, "srdi", False, "65.00", ["rd_ratio"], "200000.00"),
        evaluated(A[3], LIANDU, "srdi", False, "80.00", ["rd_ratio", "revenue"]),
        evaluated(A[4], LIANDU, "srdi", True, "90.00"),
        evaluated(A[5], LIANDU, "srdi", False, "70.00"),
    ]
    # applications: A1 passed the county, A2 rejected at the county, A6 recognised
    out += [application("app-a1", A[1], LIANDU), review("app-a1", A[1], LIANDU, "county", "approved"),
            application("app-a2", A[2], LIANDU), review("app-a2", A[2], LIANDU, "county", "rejected"),
            application("app-a6", A[6], LIANDU)]
    # recognitions: A4 (2025 batch) and A6 (2026) current srdi; 青田 B2 expired mid-2026, B1 revoked; 余杭 C1
    out += [
        recognised("r-a4", A[4], LIANDU, "srdi", "province", 2025, "2025-06-01", "2028-05-31"),
        recognised("r-a6", A[6], LIANDU, "srdi", "province", YEAR, "2026-06-01", "2029-05-31"),
        recognised("r-b2", B[2], QINGTIAN, "srdi", "province", 2023, "2023-07-01", "2026-06-30"),
        event(t(EVAL, "tier.expired"), B[2], QINGTIAN, {"recognition_id": "r-b2", "uscc": B[2],
              "region_code": QINGTIAN, "tier": "srdi", "level": "province", "expired_on": "2026-07-01"},
              time=_at(7, 1)),
        recognised("r-b1", B[1], QINGTIAN, "innovative", "province", YEAR, "2026-03-01", "2029-02-28"),
        event(t(EVAL, "tier.revoked"), B[1], QINGTIAN, {"recognition_id": "r-b1", "uscc": B[1],
              "region_code": QINGTIAN, "tier": "innovative", "level": "province", "ground": "data_fraud",
              "revoked_on": "2026-10-01", "ban_until": None}, time=_at(10)),
        recognised("r-c1", C[1], YUHANG, "srdi", "province", YEAR, "2026-06-01", "2029-05-31"),
    ]
    # money: A6 200,000 approved and paid by 莲都; B1 100,000 paid, then recovered; 余杭 C1 500,000 paid, C2 created
    out += [entitlement("created", "e-a6", A[6], LIANDU, LIANDU, "200000.00"),
            entitlement("approved", "e-a6", A[6], LIANDU, LIANDU, "200000.00"), paid("e-a6", A[6], LIANDU, "200000.00"),
            entitlement("created", "e-b1", B[1], QINGTIAN, LISHUI, "100000.00"),
            entitlement("approved", "e-b1", B[1], QINGTIAN, LISHUI, "100000.00"),
            paid("e-b1", B[1], QINGTIAN, "100000.00"),
            event(t(FIN, "recovery.raised"), B[1], QINGTIAN, {"entitlement_id": "e-b1", "recovery_id": "rc1",
                  "uscc": B[1], "region_code": QINGTIAN, "amount": "100000.00", "reason": "撤销称号"}, time=_at(11)),
            entitlement("created", "e-c1", C[1], YUHANG, YUHANG, "500000.00"),
            entitlement("approved", "e-c1", C[1], YUHANG, YUHANG, "500000.00"), paid("e-c1", C[1], YUHANG, "500000.00"),
            entitlement("created", "e-c2", C[2], YUHANG, YUHANG, "300000.00")]
    out += [assigned(A[6], LIANDU, "k1", "王专员"), assigned(A[4], LIANDU, "k1", "王专员"),
            assigned(C[1], YUHANG, "k2", "李专员")]
    # 2025 for the year-on-year: A4's recognition (batch 2025) and a 2025 pool entry
    out += [pool(A[4], LIANDU, year=2025)]
    return out

"""Double-entry ledger model, pure: every money movement is two lines of equal amount (debit = credit).

Accounts per (jurisdiction, fund, year):
  appropriation (预算来源) · available (可用) · reserved (已预留) · paid (已拨付) · receivable (应追回)
Movements:
  allocate  Dr available   / Cr appropriation   budget total raised
  reserve   Dr reserved    / Cr available       approval
  release   Dr available   / Cr reserved        cancellation of an approved entitlement
  pay       Dr paid        / Cr reserved        gateway confirmed payment
  recover   Dr receivable  / Cr paid            追回 raised after revocation
  repaid    Dr available   / Cr receivable      the enterprise repaid
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from services.finance.domain.money import ZERO, q

Movement = Literal["allocate", "reserve", "release", "pay", "recover", "repaid"]
ACCOUNTS: tuple[str, ...] = ("appropriation", "available", "reserved", "paid", "receivable")
MOVEMENTS: dict[str, tuple[str, str]] = {
    "allocate": ("available", "appropriation"),
    "reserve": ("reserved", "available"),
    "release": ("available", "reserved"),
    "pay": ("paid", "reserved"),
    "recover": ("receivable", "paid"),
    "repaid": ("available", "receivable"),
}
MOVEMENT_NAMES: dict[str, str] = {
    "allocate": "预算下达",
    "reserve": "审批预留",
    "release": "取消释放",
    "pay": "拨付",
    "recover": "追回立项",
    "repaid": "追回到账",
}


@dataclass(frozen=True)
class Line:
    account: str
    debit: Decimal
    credit: Decimal


def lines_for(movement: str, amount: Decimal) -> list[Line]:
    """The two lines of one movement; the amount must be positive."""
    amount = q(amount)
    if amount <= ZERO:
        raise ValueError("金额须大于 0 (amount must be positive)")
    debit, credit = MOVEMENTS[movement]
    return [Line(debit, amount, ZERO), Line(credit, ZERO, amount)]


@dataclass
class BudgetState:
    """The budget row's columns; ``available = total - reserved - spent``."""

    total: Decimal = ZERO
    reserved: Decimal = ZERO
    spent: Decimal = ZERO

    @property
    def available(self) -> Decimal:
        return q(self.total - self.reserved - self.spent)


class Overdraw(Exception):
    def __init__(self, remaining: Decimal) -> None:
        super().__init__(f"预算不足,剩余 {remaining}")
        self.remaining = remaining


def apply(state: BudgetState, movement: str, amount: Decimal) -> BudgetState:
    """The budget effect of a movement (the DB does the same with conditional UPDATEs)."""
    amount = q(amount)
    if movement == "allocate":
        return BudgetState(q(state.total + amount), state.reserved, state.spent)
    if movement == "reserve":
        if amount > state.available:
            raise Overdraw(state.available)
        return BudgetState(state.total, q(state.reserved + amount), state.spent)
    if movement == "release":
        if amount > state.reserved:
            raise ValueError("释放金额超过已预留")
        return BudgetState(state.total, q(state.reserved - amount), state.spent)
    if movement == "pay":
        if amount > state.reserved:
            raise ValueError("拨付金额超过已预留")
        return BudgetState(state.total, q(state.reserved - amount), q(state.spent + amount))
    if movement == "recover":
        return state
    if movement == "repaid":
        return BudgetState(state.total, state.reserved, q(state.spent - amount))
    raise ValueError(f"unknown movement {movement}")


def balances(lines: list[Line]) -> dict[str, Decimal]:
    out = {a: ZERO for a in ACCOUNTS}
    for line in lines:
        out[line.account] = q(out[line.account] + line.debit - line.credit)
    return out


def consistent(state: BudgetState, lines: list[Line]) -> list[str]:
    """Invariants linking the ledger to the budget row; empty list when all hold."""
    b = balances(lines)
    errors = []
    if q(sum((line.debit for line in lines), ZERO)) != q(sum((line.credit for line in lines), ZERO)):
        errors.append("借贷不平 (debits != credits)")
    if b["available"] != state.available:
        errors.append(f"可用余额 {b['available']} != 预算 {state.available}")
    if b["reserved"] != state.reserved:
        errors.append(f"已预留 {b['reserved']} != 预算 {state.reserved}")
    if q(b["paid"] + b["receivable"]) != state.spent:
        errors.append(f"已拨付 {b['paid'] + b['receivable']} != 预算 {state.spent}")
    if -b["appropriation"] != state.total:
        errors.append(f"预算来源 {-b['appropriation']} != 总额 {state.total}")
    if state.available < ZERO:
        errors.append("预算透支")
    return errors

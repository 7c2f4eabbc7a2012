"""The pure ledger model: random operation sequences always leave a balanced ledger matching the budget."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.finance.domain import ledger as L
from services.finance.domain.money import q

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000000"), places=2)
ops = st.lists(
    st.tuples(
        st.sampled_from(["allocate", "approve", "cancel", "pay", "recover", "repaid"]), amounts, st.integers(0, 20)
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_ledger_always_balances(sequence: list[tuple[str, Decimal, int]]) -> None:
    state = L.BudgetState()
    lines: list[L.Line] = []
    # entitlement index → (status, amount); statuses follow the service's state machine
    ents: dict[int, tuple[str, Decimal]] = {}

    def move(m: str, amount: Decimal) -> None:
        nonlocal state
        state = L.apply(state, m, amount)
        lines.extend(L.lines_for(m, amount))

    for op, amount, idx in sequence:
        status, amt = ents.get(idx, ("new", amount))
        if op == "allocate":
            move("allocate", amount)
        elif op == "approve" and status == "new":
            try:
                move("reserve", amt)
            except L.Overdraw as exc:
                assert exc.remaining == state.available
                continue
            ents[idx] = ("approved", amt)
        elif op == "cancel" and status == "approved":
            move("release", amt)
            ents[idx] = ("cancelled", amt)
        elif op == "pay" and status == "approved":
            move("pay", amt)
            ents[idx] = ("paid", amt)
        elif op == "recover" and status == "paid":
            move("recover", amt)
            ents[idx] = ("recovering", amt)
        elif op == "repaid" and status == "recovering":
            move("repaid", amt)
            ents[idx] = ("recovered", amt)
        assert L.consistent(state, lines) == []
    debit = sum((ln.debit for ln in lines), Decimal(0))
    credit = sum((ln.credit for ln in lines), Decimal(0))
    assert q(debit) == q(credit)
    assert state.available >= 0
    reserved = sum((a for s, a in ents.values() if s == "approved"), Decimal(0))
    assert q(reserved) == state.reserved


def test_overdraw_refused_with_remaining() -> None:
    s = L.apply(L.BudgetState(), "allocate", Decimal("100"))
    s = L.apply(s, "reserve", Decimal("60"))
    with pytest.raises(L.Overdraw) as info:
        L.apply(s, "reserve", Decimal("50"))
    assert info.value.remaining == Decimal("40.00")


def test_non_positive_movement_refused() -> None:
    with pytest.raises(ValueError):
        L.lines_for("pay", Decimal("0"))

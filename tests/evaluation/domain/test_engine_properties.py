"""Property tests: band edges (decision 2) and monotonicity (more R&D never lowers the score)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.evaluation.domain.engine import evaluate
from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.loader import load_all
from shared.indicators import IndicatorSet

RS = {r.id: r for r in load_all()}
INNOVATIVE = RS["MIIT-2022-63-innovative"]
SRDI = RS["MIIT-2022-63-srdi"]
AS_OF = date(2025, 6, 30)

yuan = st.decimals(min_value=Decimal("1000000"), max_value=Decimal("500000000"), places=2)

BASE = {
    "main_business_revenue_prev1": Decimal("10000000"),
    "main_business_revenue_prev2": Decimal("9000000"),
    "niche_years": Decimal(5),
    "total_assets": Decimal("10000000"),
    "total_liabilities": Decimal("5000000"),
    "net_profit": Decimal("500000"),
    "employees": 100,
    "rd_staff": 10,
    "ip_class1": 1,
    "abnormal_operation": False,
    "serious_dishonesty": False,
    "major_accident_3y": False,
}


def _facts(**ind: object) -> EnterpriseFacts:
    return EnterpriseFacts(indicators=IndicatorSet.model_validate({**BASE, **ind}), region_code="330110")


def _points(rs_id: str, facts: EnterpriseFacts, code: str) -> Decimal:
    res = evaluate(RS[rs_id], facts, AS_OF)
    item = next(i for i in res.items if i.code == code)
    assert item.points is not None
    return item.points


# Innovative R&D-ratio bands: [5%,∞)→20, [3%,5%)→15, [2%,3%)→10, [1%,2%)→5, (-∞,1%)→0
EDGES = [(Decimal("0.05"), 20, 15), (Decimal("0.03"), 15, 10), (Decimal("0.02"), 10, 5), (Decimal("0.01"), 5, 0)]


@settings(max_examples=60, deadline=None)
@given(revenue=yuan, edge=st.sampled_from(EDGES))
def test_exact_edge_belongs_to_the_band_naming_it(revenue: Decimal, edge: tuple[Decimal, int, int]) -> None:
    ratio, at_edge, below = edge
    rd = revenue * ratio  # exact: revenue has 2 places, ratio 2 places → rd has ≤ 4 places
    rd_cents = rd.quantize(Decimal("0.01"))
    if rd_cents != rd:  # the indicator only carries cents; keep exact edges only
        return
    assert _points(INNOVATIVE.id, _facts(operating_revenue=revenue, rd_expense=rd_cents), "rd_ratio") == at_edge
    just_below = rd_cents - Decimal("0.01")
    assert _points(INNOVATIVE.id, _facts(operating_revenue=revenue, rd_expense=just_below), "rd_ratio") == below


@settings(max_examples=40, deadline=None)
@given(revenue=yuan, edge=st.sampled_from(EDGES))
def test_strict_band_edge_switch_moves_the_edge_value_down(revenue: Decimal, edge: tuple[Decimal, int, int]) -> None:
    ratio, at_edge, below = edge
    rd = revenue * ratio
    if rd.quantize(Decimal("0.01")) != rd:
        return
    strict = INNOVATIVE.model_copy(update={"band_edge": "strict", "id": "strict-variant"})
    res = evaluate(strict, _facts(operating_revenue=revenue, rd_expense=rd), AS_OF)
    item = next(i for i in res.items if i.code == "rd_ratio")
    assert item.points == below
    fav = evaluate(INNOVATIVE, _facts(operating_revenue=revenue, rd_expense=rd), AS_OF)
    assert next(i for i in fav.items if i.code == "rd_ratio").points == at_edge


@settings(max_examples=150, deadline=None)
@given(
    revenue=yuan,
    rd1=st.decimals(min_value=0, max_value=Decimal("50000000"), places=2),
    extra=st.decimals(min_value=0, max_value=Decimal("50000000"), places=2),
    rs_id=st.sampled_from(sorted(RS)),
)
def test_more_rd_never_lowers_the_score(revenue: Decimal, rd1: Decimal, extra: Decimal, rs_id: str) -> None:
    base = dict(operating_revenue=revenue, main_business_revenue=(revenue * Decimal("0.8")).quantize(Decimal("0.01")))
    lo = evaluate(RS[rs_id], _facts(rd_expense=rd1, **base), AS_OF)
    hi = evaluate(RS[rs_id], _facts(rd_expense=rd1 + extra, **base), AS_OF)
    if RS[rs_id].items:
        assert lo.score is not None and hi.score is not None
        assert hi.score >= lo.score
    else:
        assert lo.score is None and hi.score is None
    assert hi.eligible or not lo.eligible  # more R&D never turns eligible into not eligible


@settings(max_examples=60, deadline=None)
@given(revenue=yuan, ratio_bp=st.integers(min_value=0, max_value=299))
def test_rd_gap_closes_exactly_the_shortfall(revenue: Decimal, ratio_bp: int) -> None:
    """The yuan gap on the 3% R&D condition, when added, makes the condition pass."""
    rd = (revenue * Decimal(ratio_bp) / Decimal(10000)).quantize(Decimal("0.01"))
    res = evaluate(SRDI, _facts(operating_revenue=revenue, rd_expense=max(rd, Decimal(1_000_000))), AS_OF)
    gap = next((g for g in res.gaps if g.code == "rd_input" and g.metric == "rd_ratio"), None)
    if gap is None:
        return
    assert gap.yuan_needed is not None and gap.yuan_needed > 0
    fixed = max(rd, Decimal(1_000_000)) + gap.yuan_needed
    res2 = evaluate(SRDI, _facts(operating_revenue=revenue, rd_expense=fixed), AS_OF)
    assert "rd_input" not in res2.unmet_codes


def test_every_shipped_band_edge_resolves_to_the_favourable_band() -> None:
    """For every scored scale of every shipped rule set (and 特色化 config): a value exactly on an edge
    scores the higher of the bands that name it (decision 2), the explanation shows that band closed on
    the edge, and a value just off the edge scores the other band."""
    from services.evaluation.domain.engine import compile_ruleset

    checked = 0
    for rs in RS.values():
        comp = compile_ruleset(rs)
        items = list(comp.items) + [ci for fs in comp.features.values() for f in fs for ci in f.items]
        for ci in items:
            for raw_scale, sc in zip(ci.item.scales or [], ci.scales, strict=True):
                edges = {e for b in raw_scale.bands for e in (b.min, b.max) if e is not None}
                for e in edges:
                    naming = [
                        b for b in raw_scale.bands if (b.min is None or b.min <= e) and (b.max is None or e <= b.max)
                    ]
                    want = max(b.points for b in naming)
                    got = sc.pick(e)
                    assert got is not None and got.points == want, (rs.id, ci.item.code, e)
                    assert "[" in got.display or "]" in got.display
                    eps = Decimal("0.000001")
                    for off in (e - eps, e + eps):
                        others = [
                            b for b in raw_scale.bands
                            if (b.min is None or b.min <= off) and (b.max is None or off <= b.max)
                        ]
                        if others:
                            picked = sc.pick(off)
                            assert picked is not None and picked.points == max(b.points for b in others)
                    checked += 1
    assert checked >= 60

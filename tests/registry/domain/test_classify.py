"""Scale derivation (工信部联企业〔2011〕300号) and industry classification."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.registry.domain.classify import Scale, derive_scale, industry_code_error, is_manufacturing
from services.registry.domain.indicators import effective_values, stored_values
from shared.indicators import IndicatorSet


@pytest.mark.parametrize(
    ("employees", "revenue", "scale"),
    [
        (1000, "400000000", Scale.LARGE),
        (999, "900000000", Scale.MEDIUM),  # both lower limits needed: falls one band
        (300, "20000000", Scale.MEDIUM),
        (300, "19999999.99", Scale.SMALL),
        (20, "3000000", Scale.SMALL),
        (19, "50000000", Scale.MICRO),
        (500, "2999999", Scale.MICRO),
    ],
)
def test_industrial_scale_bands(employees: int, revenue: str, scale: Scale) -> None:
    assert derive_scale("3484", employees, Decimal(revenue)) == scale


def test_non_industrial_not_derived() -> None:
    assert derive_scale("6513", 50, Decimal("10000000")) is None
    assert derive_scale("3484", None, Decimal("10000000")) is None


def test_manufacturing_flag_and_codes() -> None:
    assert is_manufacturing("13") and is_manufacturing("4350") and not is_manufacturing("6513")
    assert industry_code_error("3484") is None
    assert industry_code_error("C34") is not None
    assert industry_code_error("99") is not None


def test_agency_overrides_self_report_field_by_field() -> None:
    self1 = stored_values(IndicatorSet(operating_revenue=Decimal("100"), employees=10, rd_staff=2))
    self2 = stored_values(IndicatorSet(operating_revenue=Decimal("120"), employees=12))
    agency = stored_values(IndicatorSet(operating_revenue=Decimal("110.5")))
    eff = effective_values([("self_report", self1), ("agency:tax", agency), ("self_report", self2)])
    assert eff["operating_revenue"] == "110.50"  # agency wins even over a later self-report
    assert eff["employees"] == 12
    assert "rd_staff" not in eff  # the newer self-report replaced the older one as a whole

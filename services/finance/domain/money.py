"""Money helpers: Decimal only, ROUND_HALF_UP to 0.01 (分), decimal strings with 2 places in the API."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def q(value: Decimal | int | str) -> Decimal:
    """Quantise to 0.01 with ROUND_HALF_UP (四舍五入到分)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def fmt(value: Decimal | int | str) -> str:
    """``Decimal('500000')`` → ``'500000.00'``."""
    return str(q(value))


def yuan(value: Decimal) -> str:
    """Human form for explanations: ``¥1,500,000.00``."""
    return f"¥{q(value):,}"


# The largest amount a NUMERIC(16,2) column holds: totals beyond it are refused as input errors (422).
MAX_AMOUNT = Decimal("99999999999999.99")

"""Indicator revisions: field-by-field precedence (agency over self-report) and money normalisation."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from shared.indicators import IndicatorSet, consistency_errors

SELF_REPORT = "self_report"
AGENCY_PREFIX = "agency:"


def _is_money(name: str) -> bool:
    """Money fields are the ``Yuan``/``SignedYuan`` aliases (max_digits=18) of shared/indicators.py."""
    return "max_digits=18" in repr(IndicatorSet.model_fields[name].annotation)


MONEY_FIELDS: frozenset[str] = frozenset(n for n in IndicatorSet.model_fields if _is_money(n))
CENT = Decimal("0.01")


def stored_values(ind: IndicatorSet) -> dict[str, Any]:
    """The explicitly given fields of a revision as JSON-safe values, money as 2-place strings."""
    data = ind.model_dump(mode="json", exclude_unset=True)
    for name in MONEY_FIELDS & data.keys():
        if data[name] is not None:
            data[name] = str(Decimal(str(data[name])).quantize(CENT))
    return data


def is_agency(source: str) -> bool:
    return source.startswith(AGENCY_PREFIX)


def effective_values(revisions: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Merge revisions given in revision order as (source, values).

    The latest self-report is the base (a new self-report replaces the previous one as a whole); the
    latest revision of each agency then overrides it field by field, agencies in the order they reported.
    """
    latest_self: Mapping[str, Any] = {}
    agencies: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for i, (source, values) in enumerate(revisions):
        if is_agency(source):
            agencies[source] = (i, values)
        else:
            latest_self = values
    merged: dict[str, Any] = dict(latest_self)
    for _, values in sorted(agencies.values(), key=lambda t: t[0]):
        for k, v in values.items():
            if v is not None:
                merged[k] = v
    return merged


def effective_set(revisions: Iterable[tuple[str, Mapping[str, Any]]]) -> IndicatorSet:
    return IndicatorSet.model_validate(effective_values(revisions))


def published(ind: IndicatorSet) -> dict[str, Any]:
    """The full indicator set as published (every field, money as 2-place strings)."""
    data = ind.model_dump(mode="json")
    for name in MONEY_FIELDS:
        if data.get(name) is not None:
            data[name] = str(Decimal(str(data[name])).quantize(CENT))
    return data


# consistency_errors' messages end with "(<field> <value> > <other field> <value>)"
_PAIR_RE = re.compile(r"\((\w+) \S+ > (\w+) \S+\)$")


def merged_consistency_errors(
    before: Mapping[str, Any] | None, after: Mapping[str, Any], submitted: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """Cross-field errors the effective set would newly have once a revision is merged in.

    ``before``/``after`` are the effective values without/with the revision, ``submitted`` the revision's own
    values (already consistent on their own). An error the effective set already had before is not the
    revision's doing and does not block it. Each error names the submitted field involved in the conflict
    (e.g. an agency's 营业收入 below the self-reported 主营业务收入 → ``operating_revenue``).
    """
    errors = consistency_errors(IndicatorSet.model_validate(after))
    if not errors:
        return []
    existing = {f for f, _ in consistency_errors(IndicatorSet.model_validate(before))} if before else set()
    out: list[tuple[str, str]] = []
    for field, msg in errors:
        if field in existing:
            continue
        m = _PAIR_RE.search(msg)
        other = m.group(2) if m else None
        blame = other if field not in submitted and other is not None and other in submitted else field
        out.append((blame, f"与已报送的其他来源数据合并后不一致: {msg}"))
    return out


# Bounds of an enterprise's 地方特色化指标 (``local_indicators``): a province configures a handful of codes.
MAX_LOCAL_INDICATORS = 50
MAX_LOCAL_INDICATORS_BYTES = 16 * 1024


def local_indicators_error(values: Mapping[str, Any]) -> str | None:
    """Why ``local_indicators`` is refused (naming the bound), or None."""
    if len(values) > MAX_LOCAL_INDICATORS:
        return f"地方特色化指标最多 {MAX_LOCAL_INDICATORS} 项(收到 {len(values)} 项)"
    size = len(json.dumps(values, ensure_ascii=False, default=str).encode())
    if size > MAX_LOCAL_INDICATORS_BYTES:
        return f"地方特色化指标合计不能超过 16 KB(收到 {size // 1024} KB)"
    return None

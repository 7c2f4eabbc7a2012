"""The explanation of an evaluation: its schema (``EvaluationResult``), its JSON text, and its normalised
storage form. No rule is evaluated here: the rules engine (``engine``) writes explanations, this module
defines and rebuilds them.

The JSON text is what evaluation stores and serves: the keys of ``EvaluationResult`` in their order, Decimals as
strings, dates as ISO strings, written as ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``
writes ``EvaluationResult.model_dump(mode="json")`` (``tests/evaluation/domain/test_explanation_equivalence``
holds it to a frozen corpus, byte for byte).

Explanations are stored normalised: a rule-set version's **template** is the static part (every text that does
not depend on the enterprise: names, categories, thresholds, band tables, sources, UNCONFIRMED flags,
prerequisite names; stored once, keyed by the SHA-256 of its content), and each evaluation's **compact** form
the varying part, a JSON array (values, displays, bands, points, met/reason, inputs, route, prerequisite
outcomes, unmet, gaps; ~1-2 KB instead of ~7 KB)::

    [as_of, eligible, score, [[category, points], …], items, route, prerequisites, unmet, gaps]

an item is ``[template index, [input values…], value, value_display, band, points, met, reason]`` or, for the
local-feature items (whose shape depends on the province and year), its whole JSON text as a string; a
prerequisite is ``[applicable, met, title_valid_to, reason]``; unmet as in the full form; a gap is the array of
its values. Only arrays, strings, integers, booleans and null: a jsonb round trip (which reorders object keys)
keeps it intact. ``render``/``decode`` rebuild the full JSON text from the template and the compact form.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import Enum
from json.encoder import encode_basestring
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from services.evaluation.domain.rule_metrics import Value

MISSING = "缺少数据"
TEMPLATE_FORMAT = 1

jstr = encode_basestring  # a text as a JSON string

# ------------------------------------------------------------------------------------------------ schema


def _json_value(v: object) -> object:
    """A value read back from the JSON text: a string that is exactly a Decimal's text (amounts and ratios are
    written as their Decimal's string) as that Decimal, any other string as text — so that the value is
    written back as the same text ("0610" stays a code, "12.50" an amount)."""
    if isinstance(v, str):
        try:
            d = Decimal(v)
        except InvalidOperation:
            return v
        return d if d.is_finite() and str(d) == v else v
    return v


JsonValue = Annotated[Value, BeforeValidator(_json_value)]


class ItemResult(BaseModel):
    code: str
    name: str
    category: str | None = None
    category_name: str | None = None
    kind: Literal["condition", "scored", "route", "local_feature"]
    inputs: dict[str, JsonValue] = Field(default_factory=dict)
    value: JsonValue = None
    value_display: str = ""
    band: str | None = None
    points: Decimal | None = None
    max_points: Decimal | None = None
    met: bool
    threshold: str | None = None
    reason: str | None = None
    source: str | None = None
    unconfirmed: bool = False


class PrereqResult(BaseModel):
    code: str
    name: str
    tier: str
    levels: list[str] | None = None
    applicable: bool
    met: bool
    title_valid_to: date | None = None
    reason: str | None = None


class Gap(BaseModel):
    code: str
    description: str
    metric: str | None = None
    unit: str | None = None
    current: str | None = None
    required: str
    shortfall: Decimal | None = None
    shortfall_display: str | None = None
    yuan_needed: Decimal | None = None


class EvaluationResult(BaseModel):
    """One evaluation explained: the typed view of the explanation's JSON text (``engine.evaluate``)."""

    ruleset_id: str
    ruleset_version: int
    document_number: str = ""
    tier: str
    level: str
    as_of: date
    eligible: bool
    score: Decimal | None = None
    pass_score: Decimal | None = None
    category_scores: dict[str, Decimal] = Field(default_factory=dict)
    items: list[ItemResult] = Field(default_factory=list)
    route: str | None = None
    prerequisites: list[PrereqResult] = Field(default_factory=list)
    unmet: list[str] = Field(default_factory=list)
    gaps: list[Gap] = Field(default_factory=list)

    @property
    def unmet_codes(self) -> list[str]:
        return [u.split(":", 1)[0] for u in self.unmet]


# ------------------------------------------------------------------------------------------ JSON writing


def js(v: str | None) -> str:
    return "null" if v is None else jstr(v)


def jd(v: Decimal | None) -> str:
    return "null" if v is None else '"' + str(v) + '"'


def jb(v: bool) -> str:
    return "true" if v else "false"


def jv(v: Any) -> str:
    """A Value as JSON (pydantic's JSON mode: Decimal as its string; Decimal first: the commonest), or a value
    of a decoded compact form (strings, integers, booleans, null) back as its text."""
    if v is None:
        return "null"
    if isinstance(v, Decimal):
        return '"' + str(v) + '"'
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return jstr(v)
    if isinstance(v, int):
        return int.__repr__(v)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)  # pragma: no cover


def field_json(v: Any) -> str:
    """An input value as JSON (``jv``; enumerations as their value). The exact types of most values are tested
    first: cheaper than the isinstance checks (every input of every enterprise passes here)."""
    if v is None:
        return "null"
    cls = type(v)
    if cls is Decimal:
        return '"' + str(v) + '"'
    if cls is int:
        return int.__repr__(v)
    if cls is bool:
        return "true" if v else "false"
    if isinstance(v, Enum):
        return jstr(str(v.value))
    return jv(v)


GapSpec = dict[str, Any]  # the keyword arguments of one Gap


def gap(spec: GapSpec) -> str:
    """A gap in the compact form: the values of ``Gap``'s keys, in their order, as an array."""
    return (f'[{jstr(spec["code"])},{jstr(spec["description"])},{js(spec.get("metric"))},{js(spec.get("unit"))},'
            f'{js(spec.get("current"))},{jstr(spec["required"])},{jd(spec.get("shortfall"))},'
            f'{js(spec.get("shortfall_display"))},{jd(spec.get("yuan_needed"))}]')


def key_texts(names: Any) -> tuple[str, ...]:
    """The texts that open each key of a JSON object with these keys: ``{"a":``, ``,"b":``, …"""
    return tuple(("{" if i == 0 else ",") + jstr(n) + ":" for i, n in enumerate(names))


_GAP_KEYS = key_texts(Gap.model_fields)

# ------------------------------------------------------------------------------------------ the full form


class _Decoder:
    __slots__ = ("items", "pass_score", "prefix", "prereqs")

    def __init__(self, tpl: dict[str, Any]) -> None:
        if tpl.get("format") != TEMPLATE_FORMAT:
            raise ValueError(f"unknown explanation template format {tpl.get('format')!r}")
        self.prefix: str = tpl["prefix"]
        self.pass_score: str = tpl["pass_score"]
        self.prereqs: list[str] = list(tpl["prerequisites"])
        self.items = [(head, key_texts(names), mp, thr, tail) for head, names, mp, thr, tail in tpl["items"]]


_DECODERS: dict[str, _Decoder] = {}


def render(tpl: dict[str, Any], compact: Any, template_id: str | None = None) -> str:
    """The full explanation's JSON text from the rule set's template and the compact form (``json.loads`` of
    what ``engine.encode`` wrote)."""
    dec = _DECODERS.get(template_id) if template_id else None
    if dec is None:
        dec = _Decoder(tpl)
        if template_id:
            _DECODERS[template_id] = dec
    as_of, eligible, score, cats, items, route, prereqs, unmet, gaps = compact
    tpls = dec.items
    parts: list[str] = []
    for it in items:
        if isinstance(it, str):
            parts.append(it)
            continue
        idx, values, value, display, band, points, met, reason = it
        head, keys, mp, thr, tail = tpls[idx]
        inputs = "".join([k + jv(x) for k, x in zip(keys, values, strict=True)]) + "}" if keys else "{}"
        parts.append(f'{head}{inputs},"value":{jv(value)},"value_display":{jstr(display)},"band":{js(band)},'
                     f'"points":{js(points)}{mp},"met":{jb(met)}{thr},"reason":{js(reason)}{tail}')
    pre = [f'{head}{jb(a)},"met":{jb(m)},"title_valid_to":{js(vt)},"reason":{js(r)}}}'
           for head, (a, m, vt, r) in zip(dec.prereqs, prereqs, strict=True)]
    gap_texts = ["".join([k + js(x) for k, x in zip(_GAP_KEYS, g, strict=True)]) + "}" for g in gaps]
    cat_text = ",".join(f'{jstr(k)}:{jstr(v)}' for k, v in cats)
    return (f'{dec.prefix}{jstr(as_of)},"eligible":{jb(eligible)},"score":{js(score)},'
            f'"pass_score":{dec.pass_score},"category_scores":{{{cat_text}}},"items":[{",".join(parts)}],'
            f'"route":{js(route)},"prerequisites":[{",".join(pre)}],'
            f'"unmet":[{",".join(jstr(u) for u in unmet)}],"gaps":[{",".join(gap_texts)}]}}')


def decode(tpl: dict[str, Any], compact: str, template_id: str | None = None) -> str:
    """``render`` from the compact form's JSON text."""
    return render(tpl, json.loads(compact), template_id)

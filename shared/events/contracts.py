"""Event contracts as the source of truth (issue 13 item 1).

Every service declares its contracts in ``services/<name>/events/contracts.py`` (``PUBLISHED`` and ``CONSUMED``:
event type → pydantic model), found through its descriptor (``shared.services``); the external agencies' feeds
are declared in ``shared.events.agency`` (agencies are not services). From them:

- ``catalog.event_types()`` (every declared type),
- one JSON Schema per type and version (``docs/contracts/<type>.json``, also served by its producer at
  ``GET /api/v1/contracts/<type>``, the ``ce_dataschema`` of its events),
- an AsyncAPI 3.0 document of every topic (``docs/contracts/asyncapi.yaml``) and ``docs/events.md``,

written by ``zjtx contracts`` (:func:`generate`). Tests regenerate them and fail on any difference (drift), and
fail if a committed v1 schema changes other than by adding optional fields (:func:`breaking_changes`).
"""

from __future__ import annotations

import builtins
import copy
import importlib
import json
import types
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from shared.events import agency
from shared.events.catalog import dlq_of, topic_of
from shared.events.encoder import CONTRACTS_PATH, dataschema_of, envelope_headers, source_of
from shared.services import descriptors

AGENCY = "agency"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_MEDIA_TYPE = "application/schema+json"
USCC_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
EXAMPLE_USCC = agency.EXAMPLE_USCC


@dataclass(frozen=True)
class Contract:
    """One event type: who publishes it (a service or ``agency``), its producer model, who consumes it."""

    type: str
    producer: str
    model: builtins.type[BaseModel]
    consumers: tuple[str, ...] = field(default=())

    @property
    def topic(self) -> str:
        return topic_of(self.producer)

    @property
    def version(self) -> str:
        return self.type.rsplit(".", 1)[-1]


def _module(name: str | None) -> types.ModuleType | None:
    return importlib.import_module(name) if name else None


@lru_cache
def contracts() -> dict[str, Contract]:
    """Every declared event type (sorted by producer, then type)."""
    published: dict[str, tuple[str, type[BaseModel]]] = {}
    consumed: dict[str, list[str]] = {}
    sources: list[tuple[str, dict[str, type[BaseModel]], dict[str, type[BaseModel]]]] = []
    for d in descriptors():
        module = _module(d.contracts)
        if module is not None:
            sources.append((d.name, getattr(module, "PUBLISHED", {}), getattr(module, "CONSUMED", {})))
    sources.append((AGENCY, dict(agency.PUBLISHED), {}))
    for producer, pub, con in sources:
        for event_type, model in pub.items():
            if event_type in published and published[event_type][0] != producer:
                raise ValueError(f"{event_type} is published by {published[event_type][0]} and {producer}")
            published[event_type] = (producer, model)
        for event_type in con:
            consumed.setdefault(event_type, []).append(producer)
    order = [d.name for d in descriptors()] + [AGENCY]
    found = {
        t: Contract(t, producer, model, tuple(sorted(consumed.get(t, ()), key=order.index)))
        for t, (producer, model) in published.items()
    }
    return dict(sorted(found.items(), key=lambda kv: (order.index(kv[1].producer), kv[0])))


def consumed_undeclared() -> dict[str, list[str]]:
    """Types some service consumes that nobody declares publishing (service → types)."""
    known = contracts()
    out: dict[str, list[str]] = {}
    for d in descriptors():
        module = _module(d.contracts)
        missing = sorted(t for t in getattr(module, "CONSUMED", {}) if t not in known)
        if missing:
            out[d.name] = missing
    return out


# --- JSON Schema ---------------------------------------------------------------------------------------------


def json_schema(event_type: str, base: str | None = None) -> dict[str, Any]:
    """The JSON Schema (2020-12) of ``event_type``'s payload, from its producer model; its ``$id`` is the events'
    ``ce_dataschema`` (under ``base``, see ``encoder.dataschema_of``; the committed files use ``""``: relative)."""
    c = contracts()[event_type]
    schema = c.model.model_json_schema(mode="serialization")
    head: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": dataschema_of(c.producer, event_type, base),
        "title": event_type,
    }
    doc = (c.model.__doc__ or "").strip()
    if doc and "description" not in schema:
        head["description"] = doc
    schema.pop("title", None)
    example = example_of(event_type)
    if example is not None:
        schema["examples"] = [example]
    return {**head, **schema}


# --- examples ------------------------------------------------------------------------------------------------

# Values by field name for models without an example of their own (Chinese data; the USCC is valid).
_BY_NAME: dict[str, Any] = {
    "uscc": EXAMPLE_USCC, "region_code": "330110", "pool_region": "330110", "jurisdiction": "330100",
    "from_region_code": "330110", "to_region_code": "330109", "name": "杭州精工智能装备有限公司",
    "policy_name": "杭州市专精特新企业一次性奖励", "industry_code": "3562", "tier": "srdi", "track": "srdi",
    "level": "province", "year": 2025, "batch_year": 2026, "version": 1, "revision": 1, "status": "active",
    "reason": "年度复核", "comment": "材料齐全, 同意", "summary": "对新认定的省级专精特新企业给予一次性奖励",
    "agency": "杭州市余杭区市场监督管理局", "mobile": "13912345678", "email": "wm@example.cn",
    "ground": "serious_dishonesty", "stage": "county", "decision": "approved", "kind": "tier_reward",
    "amount": "200000.00", "fund": "杭州市工业和信息化发展专项资金", "ruleset_id": "zj-srdi-2026",
    "source": "enterprise", "scale": "small", "commissioner_id": "c-330110-001", "commissioner_name": "王敏",
    "valid_from": "2026-06-30", "valid_to": "2029-06-29", "announced_on": "2026-06-30", "starts_on": "2026-06-01",
    "ends_on": "2026-06-07", "effective_from": "2026-01-01", "effective_to": "2026-12-31", "due_on": "2029-03-31",
    "expired_on": "2029-06-30", "revoked_on": "2026-09-15", "ban_until": "2029-09-14", "moved_on": "2026-05-20",
    "renewal": False, "migrated_in": False, "eligible": True, "score": "72.50", "metric": "operating_revenue",
    "code": "revenue_min", "description": "上年度营业收入不低于 1000 万元", "unit": "元", "current": "8600000.00",
    "required": "10000000.00", "shortfall": "1400000.00", "yuan_needed": "1400000.00",
}
EXAMPLE_SUMMARY = "示例: 杭州精工智能装备有限公司 (杭州市余杭区 330110)"
_BY_TYPE: dict[str, Any] = {
    "string": "示例", "integer": 1, "number": 1, "boolean": True,
}


def _synth(schema: dict[str, Any], defs: dict[str, Any], name: str = "") -> Any:
    if "$ref" in schema:
        return _synth(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, name)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _synth(options[0], defs, name) if options else None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _synth(v, defs, k) for k, v in props.items()}
    if kind == "array":
        return [_synth(schema.get("items", {}), defs, name)]
    if name in _BY_NAME:
        return _BY_NAME[name]
    fmt = schema.get("format")
    if fmt == "date":
        return "2026-06-30"
    if fmt == "date-time":
        return "2026-06-30T09:30:00+08:00"
    if kind == "string" and (name.endswith("_id") or name == "id"):
        return f"{name.removesuffix('_id') or 'id'}-0001"
    if kind == "string" and name.endswith(("_on", "_until", "_from", "_to")):
        return "2026-06-30"
    if kind == "string" and name.endswith(("_at", "time")):
        return "2026-06-30T09:30:00+08:00"
    return _BY_TYPE.get(str(kind), "示例")


def example_of(event_type: str) -> dict[str, Any] | None:
    """An example payload with Chinese data: the model's own (``model_config["json_schema_extra"]["examples"]``
    or a class attribute ``EXAMPLE``), the agency feed's ``EXAMPLES``, else one built from the schema by field
    names. Only an example the producer model accepts is returned."""
    c = contracts()[event_type]
    extra = c.model.model_config.get("json_schema_extra")
    candidates: list[Any] = []
    examples = extra.get("examples") if isinstance(extra, dict) else None
    if isinstance(examples, list) and examples:
        candidates.append(examples[0])
    if isinstance(getattr(c.model, "EXAMPLE", None), dict):
        candidates.append(c.model.EXAMPLE)  # type: ignore[attr-defined]
    if event_type in agency.EXAMPLES:
        candidates.append(agency.EXAMPLES[event_type])
    schema = c.model.model_json_schema(mode="serialization")
    candidates.append(_synth(schema, schema.get("$defs", {})))
    for candidate in candidates:
        try:
            dumped = c.model.model_validate(candidate).model_dump(mode="json", exclude_unset=True)
        except ValidationError:
            continue
        return dict(dumped)
    return None


def example_headers(event_type: str) -> dict[str, str]:
    c = contracts()[event_type]
    return envelope_headers(
        source=source_of(c.producer), event_type=event_type, event_id="01937a6e-5f3c-7b1e-9a40-3c2d1e0f4a5b",
        subject=EXAMPLE_USCC, time="2026-06-30T01:30:00+00:00", dataschema=dataschema_of(c.producer, event_type, ""),
        regioncode="330110", correlationid="8f1c2a0b9d7e4c3f", traceparent=None,
    )


# --- AsyncAPI 3.0 --------------------------------------------------------------------------------------------

_HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 属性, Kafka 二进制模式 (binary content mode): 每个属性一个 ce_* 消息头",
    "required": ["content-type", "ce_id", "ce_source", "ce_type", "ce_specversion", "ce_subject", "ce_time"],
    "properties": {
        "content-type": {"type": "string", "const": "application/json"},
        "ce_id": {"type": "string", "description": "事件 ID (UUIDv7); 消费者按此去重"},
        "ce_source": {"type": "string", "description": "产生方: /zjtx/<service> 或 /zjtx/agency"},
        "ce_type": {"type": "string", "description": "事件类型, zjtx.<producer>.<aggregate>.<verb>.v<N>"},
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_subject": {"type": "string", "description": "统一社会信用代码 (USCC); 与消息键相同"},
        "ce_time": {"type": "string", "format": "date-time", "description": "事件发生时间 (ISO 8601)"},
        "ce_dataschema": {"type": "string", "format": "uri-reference",
                          "description": f"载荷的 JSON Schema: {CONTRACTS_PATH}/<type> (产生方服务上)"},
        "ce_regioncode": {"type": "string", "pattern": "^[0-9]{6}$", "description": "企业所在行政区划代码 (GB/T 2260)"},
        "ce_correlationid": {"type": "string", "description": "关联 ID: 引发此事件的请求或事件"},
        "ce_traceparent": {"type": "string", "description": "W3C Trace Context"},
    },
}
_KEY_SCHEMA = {
    "type": "string", "pattern": USCC_PATTERN, "description": "消息键 = 统一社会信用代码 (USCC): 同一企业的事件有序",
}
_DLQ_HEADERS = ["dlq_original_topic", "dlq_original_partition", "dlq_original_offset", "dlq_consumer", "dlq_error",
                "dlq_attempts"]


def _topic_producers() -> list[str]:
    seen: list[str] = []
    for c in contracts().values():
        if c.producer not in seen:
            seen.append(c.producer)
    return seen


def _summary(model: type[BaseModel]) -> str:
    doc = (model.__doc__ or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ") if doc else ""


def asyncapi(partitions: int = 6) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic: channels, messages (payload = the committed JSON Schema file,
    ``ce_*`` headers, key = USCC, an example with Chinese data), and each service's send/receive operations."""
    all_contracts = contracts()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for producer in _topic_producers():
        topic = topic_of(producer)
        mine = [c for c in all_contracts.values() if c.producer == producer]
        channels[topic] = {
            "address": topic,
            "title": f"{producer} events",
            "description": (
                f"{'外部部门 (市场监管、税务、信用…) 推送' if producer == AGENCY else producer + ' 服务发布'}的事件; "
                f"死信在 {dlq_of(topic)} (消息头另含 {', '.join(_DLQ_HEADERS)})."
            ),
            "messages": {c.type: {"$ref": f"#/components/messages/{c.type}"} for c in mine},
            "bindings": {"kafka": {"topic": topic, "partitions": partitions, "bindingVersion": "0.5.0"}},
        }
        operations[f"{producer}.send"] = {
            "action": "send",
            "title": f"{producer} publishes",
            "channel": {"$ref": f"#/channels/{topic}"},
            "messages": [{"$ref": f"#/channels/{topic}/messages/{c.type}"} for c in mine],
        }
    consumers = [d.name for d in descriptors()]
    for consumer in consumers:
        for producer in _topic_producers():
            topic = topic_of(producer)
            read = [c for c in all_contracts.values() if c.producer == producer and consumer in c.consumers]
            if read:
                operations[f"{consumer}.receive.{producer}"] = {
                    "action": "receive",
                    "title": f"{consumer} consumes {producer} events",
                    "channel": {"$ref": f"#/channels/{topic}"},
                    "messages": [{"$ref": f"#/channels/{topic}/messages/{c.type}"} for c in read],
                    "bindings": {"kafka": {"groupId": {"type": "string", "const": f"zjtx-{consumer}"},
                                           "bindingVersion": "0.5.0"}},
                }
    for c in all_contracts.values():
        message: dict[str, Any] = {
            "name": c.type,
            "title": c.type,
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
            "payload": {"$ref": f"./{c.type}.json"},
            "bindings": {"kafka": {"key": _KEY_SCHEMA, "bindingVersion": "0.5.0"}},
        }
        if summary := _summary(c.model):
            message["summary"] = summary
        example = example_of(c.type)
        if example is not None:
            message["examples"] = [{"name": "example", "summary": EXAMPLE_SUMMARY, "headers": example_headers(c.type),
                                    "payload": example}]
        messages[c.type] = message
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "zjtx 事件 (浙江省优质中小企业梯度培育)",
            "version": "1.0.0",
            "description": (
                "Every event of zjtx: CloudEvents 1.0 in Kafka binary mode (ce_* headers, JSON value), key = the "
                "enterprise's USCC (one enterprise's events stay ordered in a partition). A published v1 payload "
                "only gains optional fields; consumers ignore fields they do not know. Generated from the services' "
                "events/contracts.py by `zjtx contracts`; do not edit."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {"host": "kafka:9092", "protocol": "kafka",
                           "description": "Apache Kafka (KRaft), SASL/SCRAM"},
            "development": {"host": "127.0.0.1:9092", "protocol": "kafka", "description": "make run (Tansu)"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": {"CloudEventHeaders": _HEADERS_SCHEMA}, "messages": messages},
    }


# --- events.md -----------------------------------------------------------------------------------------------

_PREAMBLE = """# Event contracts

<!-- Generated by `zjtx contracts` from the services' events/contracts.py and shared/events/agency.py: do not
edit by hand. -->

Every event is a CloudEvents 1.0 record in Kafka binary mode: attributes in `ce_*` headers (`ce_id`,
`ce_source` = `/zjtx/<producer>`, `ce_type`, `ce_subject` = USCC, `ce_time`, `ce_dataschema` = the URL of the
payload's JSON Schema, `/api/v1/contracts/<type>` on the producing service (under `ZJTX_CONTRACTS_BASE_URL` when
set, e.g. `https://api.example.cn/{service}`), `ce_regioncode` = the enterprise's
GB/T 2260 code, `ce_correlationid`, `ce_traceparent`), the payload as a JSON object in the value, the record key
= USCC. Topics: `zjtx.<producer>.events`; dead letters in `<topic>.dlq` with headers `dlq_original_topic`,
`dlq_original_partition`, `dlq_original_offset`, `dlq_consumer`, `dlq_error`, `dlq_attempts`. Money is a decimal
string with 2 places; dates are ISO `YYYY-MM-DD`. A v1 payload only ever gains optional fields (a test holds the
committed schemas to that); consumers ignore unknown fields.

The machine-readable contracts: [`contracts/asyncapi.yaml`](contracts/asyncapi.yaml) (AsyncAPI 3.0: channels,
messages, headers, key, examples) and one JSON Schema per type in [`contracts/`](contracts/).
"""


def _field_list(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    names = [f"{k}" if k in required else f"{k}?" for k in schema.get("properties", {})]
    return ", ".join(names)


def events_markdown() -> str:
    lines = [_PREAMBLE]
    for producer in _topic_producers():
        topic = topic_of(producer)
        lines.append(f"## {producer} (`{topic}`)\n")
        lines.append("| type | consumers | payload (`?` = optional) | description |")
        lines.append("|---|---|---|---|")
        for c in (c for c in contracts().values() if c.producer == producer):
            schema = c.model.model_json_schema(mode="serialization")
            summary = _summary(c.model).replace("|", "\\|")
            link = f"[`{c.type}`](contracts/{c.type}.json)"
            lines.append(f"| {link} | {', '.join(c.consumers) or '—'} | `{_field_list(schema)}` | {summary} |")
        lines.append("")
    return "\n".join(lines)


# --- files ---------------------------------------------------------------------------------------------------


def _json_text(data: Any) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, (date, Decimal)):
            return str(value)
        raise TypeError(type(value).__name__)

    return json.dumps(data, ensure_ascii=False, indent=2, default=default) + "\n"


def rendered() -> dict[str, str]:
    """Every generated file (path relative to the repository's ``docs/``) and its text."""
    files = {f"contracts/{t}.json": _json_text(json_schema(t, base="")) for t in contracts()}
    files["contracts/asyncapi.yaml"] = (
        "# Generated by `zjtx contracts` from the event contracts: do not edit by hand.\n"
        + yaml.safe_dump(json.loads(_json_text(asyncapi())), allow_unicode=True, sort_keys=False, width=120)
    )
    files["events.md"] = events_markdown()
    return files


def generate(docs: Path) -> list[Path]:
    """Write the generated files under ``docs`` (stale schema files of types no longer declared are removed)."""
    written: list[Path] = []
    target = docs / "contracts"
    target.mkdir(parents=True, exist_ok=True)
    files = rendered()
    for old in target.glob("*.json"):
        if f"contracts/{old.name}" not in files:
            old.unlink()
    for rel, content in files.items():
        path = docs / rel
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


# --- compatibility -------------------------------------------------------------------------------------------


def breaking_changes(old: dict[str, Any], new: dict[str, Any], where: str = "") -> list[str]:
    """How ``new`` breaks readers of ``old``: anything but added optional properties (and new definitions, or
    changed descriptions and examples) is reported."""
    problems: list[str] = []
    ignore = {"description", "examples", "title", "properties", "required", "$defs", "$id"}
    for key in set(old) | set(new):
        if key in ignore:
            continue
        if old.get(key) != new.get(key):
            problems.append(f"{where or '/'}: '{key}' changed from {old.get(key)!r} to {new.get(key)!r}")
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for name in sorted(new_req - old_req):
        problems.append(f"{where}/{name}: newly required")
    for name in sorted(old_req - new_req):
        problems.append(f"{where}/{name}: no longer required (readers rely on it)")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, schema in old_props.items():
        if name not in new_props:
            problems.append(f"{where}/{name}: removed")
        else:
            problems += breaking_changes(schema, new_props[name], f"{where}/{name}")
    for name, schema in old.get("$defs", {}).items():
        if name not in new.get("$defs", {}):
            problems.append(f"$defs/{name}: removed")
        else:
            problems += breaking_changes(schema, new["$defs"][name], f"$defs/{name}")
    return problems


def strip_examples(schema: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    out.pop("examples", None)
    return out

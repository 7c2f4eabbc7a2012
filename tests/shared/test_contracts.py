"""Contracts as the source of truth (issue 13 item 1): the generated JSON Schemas, AsyncAPI document and
docs/events.md are what the contracts give (drift), a committed v1 schema only ever gains optional fields
(compatibility, against the frozen copies in tests/shared/contracts_v1/), and every ``ce_dataschema`` URL answers
200 with its schema on the producing service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import MetaData

from shared.backbone import Backbone
from shared.events.catalog import event_types
from shared.events.contracts import (
    AGENCY,
    SCHEMA_MEDIA_TYPE,
    breaking_changes,
    contracts,
    example_of,
    rendered,
    strip_examples,
)
from shared.events.outbox import outbox_row
from tests.harness import running_service

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FROZEN = Path(__file__).parent / "contracts_v1"


def test_generated_contracts_match_what_is_committed() -> None:
    """Run ``zjtx contracts`` after changing a contract, and commit what it writes."""
    files = rendered()
    stale = [rel for rel, text in files.items()
             if not (DOCS / rel).exists() or (DOCS / rel).read_text(encoding="utf-8") != text]
    assert not stale, f"out of date (run `zjtx contracts`): {stale}"
    extra = sorted(p.name for p in (DOCS / "contracts").glob("*.json") if f"contracts/{p.name}" not in files)
    assert not extra, f"schemas of types no contract declares: {extra}"


def test_asyncapi_document_covers_every_topic_type_header_and_key() -> None:
    doc = yaml.safe_load((DOCS / "contracts" / "asyncapi.yaml").read_text(encoding="utf-8"))
    assert doc["asyncapi"] == "3.0.0"
    assert "zjtx.agency.events" in doc["channels"]
    messages = doc["components"]["messages"]
    assert set(messages) == set(contracts())
    for event_type, message in messages.items():
        assert (DOCS / "contracts" / message["payload"]["$ref"]).exists(), event_type
        assert message["headers"] == {"$ref": "#/components/schemas/CloudEventHeaders"}
        assert message["bindings"]["kafka"]["key"]["description"].startswith("消息键 = 统一社会信用代码")
        example = message["examples"][0]
        assert example["headers"]["ce_type"] == event_type
        assert contracts()[event_type].model.model_validate(example["payload"])
    headers = doc["components"]["schemas"]["CloudEventHeaders"]["properties"]
    assert {"ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_dataschema", "ce_regioncode",
            "ce_correlationid", "ce_traceparent"} <= set(headers)
    # an example with Chinese data in every message (in the payload where it has text fields)
    chinese = [t for t, m in messages.items()
               if any("\u4e00" <= ch <= "\u9fff" for ch in json.dumps(m["examples"][0], ensure_ascii=False))]
    assert chinese == list(messages)


def test_catalog_is_the_contracts() -> None:
    assert event_types() == frozenset(contracts())
    assert {c.producer for c in contracts().values()} >= {AGENCY}
    assert all(example_of(t) is not None for t in contracts())


@pytest.mark.parametrize("frozen", sorted(FROZEN.glob("*.json")), ids=lambda p: p.stem)
def test_committed_v1_schema_only_gains_optional_fields(frozen: Path) -> None:
    current = DOCS / "contracts" / frozen.name
    assert current.exists(), f"{frozen.stem} was published as v1 and must stay (publish a v2 next to it)"
    old = strip_examples(json.loads(frozen.read_text(encoding="utf-8")))
    new = strip_examples(json.loads(current.read_text(encoding="utf-8")))
    assert breaking_changes(old, new) == []


def test_compatibility_check_tells_additions_from_breaks() -> None:
    old = {"type": "object", "additionalProperties": False, "required": ["uscc", "year"],
           "properties": {"uscc": {"type": "string"}, "year": {"type": "integer"}}}
    added = {**old, "properties": {**old["properties"], "fund": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    assert breaking_changes(old, added) == []
    required = {**added, "required": ["uscc", "year", "fund"]}
    assert breaking_changes(old, required) == ["/fund: newly required"]
    removed = {**old, "properties": {"uscc": {"type": "string"}}}
    assert breaking_changes(old, removed) == ["/year: removed"]
    retyped = {**old, "properties": {**old["properties"], "year": {"type": "string"}}}
    assert breaking_changes(old, retyped) == ["/year: 'type' changed from 'integer' to 'string'"]


async def test_every_dataschema_url_answers_with_its_schema() -> None:
    """The ``ce_dataschema`` an event is written with resolves on its producer (agency feeds: on any service)."""
    by_service: dict[str, list[str]] = {}
    for event_type, c in contracts().items():
        by_service.setdefault("registry" if c.producer == AGENCY else c.producer, []).append(event_type)
    for service, types in by_service.items():
        async with running_service(service) as (_, client):
            listed = (await client.get("/api/v1/contracts")).json()["items"]
            assert {i["type"] for i in listed} >= set(types)
            for event_type in types:
                producer = contracts()[event_type].producer
                row = outbox_row(Backbone(producer, MetaData(schema="x")), event_type, "91330110MA27XKQ58A", {})
                url = row["headers"]["ce_dataschema"]
                r = await client.get(url)
                assert r.status_code == 200, (service, url, r.text)
                assert r.headers["content-type"] == SCHEMA_MEDIA_TYPE
                committed = json.loads((DOCS / "contracts" / f"{event_type}.json").read_text(encoding="utf-8"))
                assert r.json() == committed
            missing = await client.get("/api/v1/contracts/zjtx.registry.enterprise.teleported.v1")
            assert missing.status_code == 404


def test_dataschema_under_a_configured_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a gateway the schema URL is absolute (``ZJTX_CONTRACTS_BASE_URL``); the committed files stay
    relative, and the served schema's ``$id`` is the events' ``ce_dataschema``."""
    from shared.events.contracts import json_schema

    monkeypatch.setenv("ZJTX_CONTRACTS_BASE_URL", "https://api.zjtx.example.cn/{service}/")
    event_type = "zjtx.registry.pool.entered.v1"
    row = outbox_row(Backbone("registry", MetaData(schema="x")), event_type, "91330110MA27XKQ58A", {})
    url = "https://api.zjtx.example.cn/registry/api/v1/contracts/zjtx.registry.pool.entered.v1"
    assert row["headers"]["ce_dataschema"] == url
    assert json_schema(event_type)["$id"] == url
    assert rendered()[f"contracts/{event_type}.json"] == (DOCS / "contracts" / f"{event_type}.json").read_text()

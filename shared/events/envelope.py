"""CloudEvents 1.0 envelope in Kafka binary mode: ``ce_*`` headers, JSON value, key = USCC."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.models import assembled

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"


class EnvelopeError(ValueError):
    """The record is not a valid zjtx CloudEvent (non-retryable: it goes to the DLQ)."""


class EventPayload(BaseModel):
    """Base for producer-side payload contracts: unknown fields are a bug, so they are forbidden."""

    model_config = ConfigDict(extra="forbid")


class EventReader(BaseModel):
    """Base for consumer-side payload models: a tolerant reader ignores fields it does not know."""

    model_config = ConfigDict(extra="ignore")


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):  # audit before/after and payloads are often models
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# non-text keys as text (as json.dumps); dates and times through ``_json_default`` (``isoformat``: orjson's own
# format refuses a time of day with a zone)
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def dumps(data: Any) -> bytes:
    """Compact JSON (UTF-8, not ``\\u`` escapes), with models, enums, Decimals, dates and UUIDs as their JSON
    values (orjson: the same text as ``json.dumps(separators=(",", ":"), ensure_ascii=False)``, several times
    faster, which matters to consumers and relays handling 100,000 events of a re-evaluation)."""
    return orjson.dumps(data, default=_json_default, option=_OPTIONS)


def dumps_text(data: Any) -> str:
    """``dumps`` as text (for COPY into json and jsonb columns)."""
    return dumps(data).decode()


def loads(text: str | bytes) -> Any:
    """Parse JSON (text or UTF-8 bytes); malformed input raises ``ValueError`` (``json.JSONDecodeError``)."""
    return orjson.loads(text)


class CloudEvent(BaseModel):
    """One event as the consumer sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    source: str
    type: str
    specversion: str = SPEC_VERSION
    subject: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = CONTENT_TYPE
    dataschema: str | None = None
    regioncode: str | None = None
    correlationid: str | None = None
    traceparent: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        from shared.events.encoder import envelope_headers  # the one header encoder (it imports this module)

        headers = envelope_headers(
            source=self.source, event_type=self.type, event_id=self.id, subject=self.subject,
            time=self.time.isoformat(), dataschema=self.dataschema, regioncode=self.regioncode,
            correlationid=self.correlationid, traceparent=self.traceparent, content_type=self.datacontenttype,
            specversion=self.specversion,
        )
        return [(name, value.encode()) for name, value in headers.items()]

    def kafka_value(self) -> bytes:
        return dumps(self.data)

    @classmethod
    def from_kafka(cls, headers: Sequence[tuple[str, bytes]] | None, value: bytes | None) -> CloudEvent:
        attrs: dict[str, Any] = {}
        for name, raw in headers or ():
            attr = _ATTRIBUTE_OF_HEADER.get(name)
            if attr is not None:
                try:
                    attrs[attr] = raw.decode()
                except UnicodeDecodeError as exc:
                    raise EnvelopeError(f"header {name} is not UTF-8") from exc
            elif name == "content-type":
                attrs["datacontenttype"] = raw.decode(errors="replace")
            elif name.startswith("ce_"):
                # An extension attribute this reader does not know is ignored (CloudEvents: consumers must
                # tolerate them), but it must still be text.
                try:
                    raw.decode()
                except UnicodeDecodeError as exc:
                    raise EnvelopeError(f"header {name} is not UTF-8") from exc
        missing = [a for a in ("id", "source", "type", "subject") if a not in attrs]
        if missing:
            raise EnvelopeError(f"missing CloudEvents attributes: {', '.join(missing)}")
        if attrs.get("specversion", SPEC_VERSION) != SPEC_VERSION:
            raise EnvelopeError(f"unsupported specversion {attrs['specversion']}")
        try:
            data = orjson.loads(value or b"")
        except ValueError as exc:  # orjson.JSONDecodeError is a json.JSONDecodeError, invalid UTF-8 included
            raise EnvelopeError(f"value is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise EnvelopeError("value must be a JSON object")
        attrs["data"] = data
        event = _assembled(attrs)
        if event is not None:
            return event
        try:
            return cls.model_validate(attrs)
        except ValidationError as exc:
            raise EnvelopeError(f"invalid envelope: {exc.errors()[0]['msg']}") from exc


# ``ce_<attribute>`` header → attribute, for the attributes the envelope knows (looked up once per header).
_ATTRIBUTE_OF_HEADER = {f"ce_{a}": a for a in CloudEvent.model_fields if a not in ("data", "datacontenttype")}
_DEFAULTS: dict[str, Any] = {
    name: (info.default if info.default_factory is None else None) for name, info in CloudEvent.model_fields.items()
}


def _assembled(attrs: dict[str, Any]) -> CloudEvent | None:
    """The event ``model_validate(attrs)`` would give, assembled directly, for the usual record (every attribute a
    text, as read from the headers; ``time`` an ISO 8601 date and time with its offset): a consumer reads 100,000
    of them in a re-evaluation, and validating each cost as much as the rest of reading it. Anything else (no or
    another form of time) returns None: the model validates it."""
    when = attrs.get("time")
    if when is None or len(when) < 20 or when[4] != "-" or when[10] != "T":
        return None
    try:
        stamp = datetime.fromisoformat(when)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return None
    return assembled(CloudEvent, {**_DEFAULTS, **attrs, "time": stamp}, set(attrs))


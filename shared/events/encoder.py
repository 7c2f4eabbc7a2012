"""The one encoder of the event envelope: CloudEvents 1.0 in Kafka binary mode (``ce_*`` headers, JSON value,
key = USCC), as written to a service's outbox.

- :func:`envelope_headers` is the only place that knows the header names, their order and their texts; the
  single path (``outbox.outbox_row`` / ``emit``), the bulk path (:class:`OutboxCopy`) and
  ``CloudEvent.kafka_headers`` all call it.
- :class:`OutboxCopy` is the bulk path: outbox rows of one event type, stamped once, written as lines of
  PostgreSQL's COPY text format (the re-evaluation job writes 100,000 of them; a dict and an encoder pass per
  row cost more than the rest of the row). Its header text is cut from ``envelope_headers``' own output, so the
  two cannot drift; a test holds a single and a bulk row of the same event byte-identical.
- :func:`copy_outbox` COPYs such lines in the caller's transaction and wakes the relay
  (:func:`wake_relay`, the NOTIFY every outbox write goes through).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable, Iterable
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.backbone import Backbone
from shared.context import correlation_id_var, event_id_var, request_id_var, traceparent_var
from shared.db import driver_connection
from shared.events.catalog import topic_of
from shared.events.envelope import CONTENT_TYPE, SPEC_VERSION, dumps_text
from shared.ids import uuid7_str

CONTRACTS_PATH = "/api/v1/contracts"
OUTBOX_COLUMNS = ("event_id", "topic", "key", "type", "headers", "payload")


def source_of(service: str) -> str:
    return f"/zjtx/{service}"


def dataschema_of(service: str, event_type: str, base: str | None = None) -> str:
    """Where the JSON Schema of ``event_type`` is served: ``/api/v1/contracts/<type>`` on the producing service,
    under ``base`` or else ``ZJTX_CONTRACTS_BASE_URL`` when set (``{service}`` in it is replaced by the producer's
    name, e.g. ``https://api.zjtx.example.cn/{service}``); relative to the producing service otherwise."""
    root = os.environ.get("ZJTX_CONTRACTS_BASE_URL", "") if base is None else base
    return f"{root.rstrip('/').replace('{service}', service)}{CONTRACTS_PATH}/{event_type}"


def current_correlation(event_id: str) -> str:
    """The correlation id of an event written now: the request's or consumed event's, else the event's own."""
    return correlation_id_var.get() or event_id_var.get() or request_id_var.get() or event_id


def envelope_headers(
    *,
    source: str,
    event_type: str,
    event_id: str,
    subject: str,
    time: str,
    dataschema: str | None,
    regioncode: str | None = None,
    correlationid: str | None = None,
    traceparent: str | None = None,
    content_type: str = CONTENT_TYPE,
    specversion: str = SPEC_VERSION,
) -> dict[str, str]:
    """The Kafka headers of one event, in their order (absent attributes are left out)."""
    headers = {
        "content-type": content_type,
        "ce_id": event_id,
        "ce_source": source,
        "ce_type": event_type,
        "ce_specversion": specversion,
        "ce_subject": subject,
        "ce_time": time,
    }
    if dataschema is not None:
        headers["ce_dataschema"] = dataschema
    if regioncode is not None:
        headers["ce_regioncode"] = regioncode
    if correlationid is not None:
        headers["ce_correlationid"] = correlationid
    if traceparent is not None:
        headers["ce_traceparent"] = traceparent
    return headers


# --- PostgreSQL COPY text format -----------------------------------------------------------------------------

COPY_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """A text value in COPY's text format (backslash, tab, newline and carriage return escaped)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def copy_json(value: str) -> str:
    """Compact JSON text (no raw tab, newline or carriage return: JSON escapes them in strings, and compact
    output has no whitespace between tokens) in COPY's text format: only its backslashes need escaping."""
    return value.replace("\\", "\\\\")


# A JSON string literal without ``\\u`` escapes of non-ASCII text: the same text orjson writes for it (C code).
_json_string: Callable[[str], str] = encode_basestring


# --- bulk path -----------------------------------------------------------------------------------------------

_SLOT = re.compile(r'"\\u0000(\w+)\\u0000"')


def _slot(name: str) -> str:
    return f"\x00{name}\x00"


_SLOTS = ("id", "subject", "region")


class _Template:
    """The header JSON of one shape of event as a ``%`` format: fixed text (already in COPY text format) around
    per-event slots, filled from ``(id, subject, region)`` in one C call."""

    __slots__ = ("pick", "text")

    def __init__(self, headers: dict[str, str]) -> None:
        parts = _SLOT.split(dumps_text(headers))
        fixed = [copy_json(p).replace("%", "%%") for p in parts[0::2]]
        self.text = "%s".join(fixed)
        self.pick = itemgetter(*(_SLOTS.index(name) for name in parts[1::2]))


class OutboxCopy:
    """Outbox rows of one event type from one service, stamped ``time``, as lines of COPY's text format.

    Built in the writing process (it reads the request's correlation id and traceparent, as ``emit`` does) and
    picklable: a job's worker processes encode their rows with it and pass the bytes back."""

    __slots__ = ("_key_type", "_templates", "_topic", "correlation", "event_type", "service")

    def __init__(self, service: str, event_type: str, time: str, *, topic: str | None = None) -> None:
        self.service, self.event_type = service, event_type
        self._topic = copy_text(topic or topic_of(service))
        self._key_type = copy_text(event_type)
        self.correlation = correlation_id_var.get() or event_id_var.get() or request_id_var.get()
        traceparent = traceparent_var.get()
        self._templates = {
            region: _Template(envelope_headers(
                source=source_of(service), event_type=event_type, event_id=_slot("id"), subject=_slot("subject"),
                time=time, dataschema=dataschema_of(service, event_type),
                regioncode=_slot("region") if region else None,
                correlationid=_slot("id") if self.correlation is None else self.correlation,
                traceparent=traceparent,
            ))
            for region in (True, False)
        }

    def headers_text(self, event_id: str, subject: str, regioncode: str | None) -> str:
        """The headers' JSON text (COPY-escaped) of one event."""
        template = self._templates[regioncode is not None]
        values = (f'"{event_id}"', copy_json(_json_string(subject)),  # an id needs no escaping
                  None if regioncode is None else copy_json(_json_string(regioncode)))
        text: str = template.text % template.pick(values)
        return text

    def line(
        self, subject: str, payload: str | dict[str, Any] | BaseModel, regioncode: str | None = None,
        event_id: str | None = None,
    ) -> tuple[str, str]:
        """(event id, the row's COPY line). ``payload``: compact JSON text, or a mapping/model to encode."""
        eid = event_id or uuid7_str()
        if type(payload) is not str:
            payload = dumps_text(payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload)
        headers = self.headers_text(eid, subject, regioncode)
        return eid, (f"{eid}\t{self._topic}\t{copy_text(subject)}\t{self._key_type}\t{headers}\t"
                     f"{copy_json(payload)}\n")


async def wake_relay(session: AsyncSession, backbone: Backbone) -> None:
    """NOTIFY the service's relay once per transaction (delivered at commit, dropped on rollback). A session may
    run several transactions one after the other, so the flag remembers the transaction, not just the session."""
    tx = session.sync_session.get_transaction()
    key = f"outbox_notify:{backbone.notify_channel}"
    if tx is None or session.info.get(key) is not tx:
        await session.execute(text("SELECT pg_notify(:ch, '')"), {"ch": backbone.notify_channel})
        session.info[key] = tx


async def _chunks(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def copy_outbox(session: AsyncSession, backbone: Backbone, parts: Iterable[bytes]) -> None:
    """COPY outbox lines (:meth:`OutboxCopy.line`, joined and encoded, in any number of parts) in the caller's
    transaction and wake the relay."""
    raw = await driver_connection(session)
    await raw.copy_to_table("outbox", schema_name=backbone.outbox.schema, columns=list(OUTBOX_COLUMNS),
                            source=_chunks(parts), format="text")
    await wake_relay(session, backbone)

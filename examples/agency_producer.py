"""Worked example: an agency sends its feed to zjtx (市场监管, 税务, 信用), one event of each type.

    .venv/bin/python examples/agency_producer.py localhost:9092
    .venv/bin/python examples/agency_producer.py localhost:9092 --uscc 91330110MA27XKQ58A --type credit.listed
    ZJTX_AGENCY_SASL_PASSWORD=… .venv/bin/python examples/agency_producer.py kafka:9092 \
        --security-protocol SASL_PLAINTEXT --sasl-username agency-lishui --source /agency/ls-scjg

Each event is a CloudEvents 1.0 record in Kafka *binary mode* on the topic ``zjtx.agency.events``:

- key: the enterprise's USCC (UTF-8), so one enterprise's events stay in order;
- value: the JSON payload (UTF-8), validated here against its contract (``shared/events/agency.py``; the JSON
  Schemas are served at ``/api/v1/contracts/<type>``); money as decimal strings with 2 places (yuan);
- headers: ``content-type: application/json``, ``ce_id`` (unique per event: a resend with the same id is
  applied once), ``ce_source`` (the sending agency, e.g. ``/agency/hz-scjg``), ``ce_type``, ``ce_specversion``
  ``1.0``, ``ce_subject`` (the USCC), ``ce_time`` (ISO 8601 with offset), ``ce_regioncode`` (the enterprise's
  region code).

A message that does not fit its contract is not applied: it goes to ``zjtx.agency.events.dlq`` with the reason
in the ``dlq_error`` header, and the feed goes on with the next message.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from shared.events.agency import EXAMPLES, PUBLISHED, SUBJECTS, TOPIC, TYPES

try:
    from examples.agency_consumer import add_security_arguments, broker_security
except ImportError:  # run as a script: python examples/agency_producer.py
    from agency_consumer import add_security_arguments, broker_security  # type: ignore[no-redef]


def record(event_type: str, payload: dict[str, Any], source: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of one agency event; the payload is checked against its contract first."""
    model = PUBLISHED[event_type]
    data = model.model_validate(payload).model_dump(mode="json", exclude_none=True)
    uscc = str(data["uscc"])
    region = str(data.get("region_code") or "")
    headers = {
        "content-type": "application/json",
        "ce_id": str(uuid.uuid4()),
        "ce_source": source,
        "ce_type": event_type,
        "ce_specversion": "1.0",
        "ce_subject": uscc,
        "ce_time": datetime.now(UTC).isoformat(),
    }
    if region:
        headers["ce_regioncode"] = region
    value = orjson.dumps(data)
    return uscc.encode(), value, [(k, v.encode()) for k, v in headers.items()]


def examples(uscc: str | None = None, types: Sequence[str] = TYPES) -> list[tuple[str, dict[str, Any]]]:
    """The example payloads (``shared.events.agency.EXAMPLES``) of ``types``, for ``uscc`` if given."""
    out = []
    for t in types:
        payload = dict(EXAMPLES[t])
        if uscc:
            payload["uscc"] = uscc
        out.append((t, payload))
    return out


async def produce(
    bootstrap: str,
    events: Sequence[tuple[str, dict[str, Any]]],
    *,
    topic: str = TOPIC,
    source: str = "/agency/example",
    raw: Sequence[tuple[bytes, bytes, list[tuple[str, bytes]]]] = (),
    kafka: dict[str, Any] | None = None,
) -> list[str]:
    """Send ``events`` (type, payload) in order, then any ``raw`` records as they are; the ids sent. ``kafka``:
    extra AIOKafkaProducer settings (SASL, TLS: :func:`examples.agency_consumer.broker_security`)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", client_id="agency-producer-example",
                                **(kafka or {}))
    await producer.start()
    ids: list[str] = []
    try:
        for event_type, payload in events:
            key, value, headers = record(event_type, payload, source)
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
            ids.append(dict(headers)["ce_id"].decode())
            print(f"sent {event_type} ({SUBJECTS[event_type]}) key={key.decode()}", flush=True)
        for key, value, headers in raw:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()
    return ids


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Send one example event of each agency feed type to zjtx.")
    parser.add_argument("bootstrap", help="Kafka bootstrap servers, e.g. localhost:9092")
    parser.add_argument("--topic", default=TOPIC, help=f"topic (default {TOPIC})")
    parser.add_argument("--uscc", help="the enterprise's USCC (default: the examples' own)")
    parser.add_argument("--source", default="/agency/example", help="ce_source: who sends (e.g. /agency/hz-scjg)")
    parser.add_argument("--type", action="append", dest="types", metavar="TYPE",
                        help="only this type (full name, or short like credit.listed); repeatable")
    add_security_arguments(parser)  # the broker's SASL/SCRAM (docker-compose's Kafka): the agency's principal
    args = parser.parse_args(argv)
    security = broker_security(args)
    types: list[str] = list(TYPES)
    if args.types:
        types = []
        for wanted in args.types:
            found = [t for t in TYPES if t == wanted or t == f"zjtx.agency.{wanted}.v1"]
            if not found:
                parser.error(f"unknown type {wanted}; known: {', '.join(TYPES)}")
            types.extend(found)
    asyncio.run(produce(args.bootstrap, examples(args.uscc, types), topic=args.topic, source=args.source,
                        kafka=security))
    return 0


if __name__ == "__main__":
    sys.exit(main())

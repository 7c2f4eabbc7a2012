"""Example consumer for an agency: follow zjtx's events and print one line per event, either from the broker or
from the monitor service's HTTP feed. Needs only aiokafka and httpx.

Broker (a principal granted the topics; group ``agency-<name>``, read from the beginning the first time, then on
from the group's committed offsets):

    python examples/agency_consumer.py broker --bootstrap kafka.zjtx.example.cn:9092 --name lishui-scjg \\
        --region 331100

In production the broker wants the agency's SASL/SCRAM principal and reads only the topics it is granted:

    ZJTX_AGENCY_SASL_PASSWORD=… python examples/agency_consumer.py broker --bootstrap kafka:9092 \\
        --security-protocol SASL_PLAINTEXT --sasl-username agency-lishui --name lishui-scjg \\
        --topic zjtx.registry.events --topic zjtx.evaluation.events --region 331100

HTTP feed (no broker access; the token's role is ``agency`` and its region the jurisdiction: the feed holds only
that jurisdiction's enterprises):

    python examples/agency_consumer.py feed --url http://localhost:8000 --token "$TOKEN" --after 0

Each line: ``<time> <type> <USCC> <region> <payload JSON>``. See docs/agencies.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.helpers import create_ssl_context

TOPICS = (
    "zjtx.registry.events",
    "zjtx.evaluation.events",
    "zjtx.finance.events",
    "zjtx.notification.events",
    "zjtx.agency.events",
)
Printer = Callable[[str], None]


def line(event_type: str, subject: str, region: str | None, time: str, data: Any) -> str:
    """One printed line per event."""
    return f"{time} {event_type} {subject} {region or '-'} {json.dumps(data, ensure_ascii=False, sort_keys=True)}"


def region_prefix(region: str) -> str:
    """330000 → 33 (the province), 331100 → 3311 (a city), 331102 → 331102 (a county)."""
    code = region
    while code.endswith("00") and len(code) > 2:
        code = code[:-2]
    return code


def _print(text: str) -> None:
    print(text, flush=True)


async def follow_broker(
    bootstrap: str,
    name: str,
    *,
    topics: Sequence[str] = TOPICS,
    region: str | None = None,
    max_events: int | None = None,
    idle_seconds: float | None = None,
    out: Printer = _print,
    **kafka: Any,
) -> int:
    """Read ``topics`` in the group ``agency-<name>`` (from the beginning when the group is new), keep the events
    of ``region`` (``ce_regioncode`` within it) and print them; stops after ``max_events`` printed or
    ``idle_seconds`` without a record. ``kafka``: extra AIOKafkaConsumer settings (SASL, TLS)."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"agency-{name}",
        client_id=f"agency-{name}",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        **kafka,
    )
    prefix = region_prefix(region) if region else None
    printed = 0
    await consumer.start()
    try:
        idle = 0.0
        while max_events is None or printed < max_events:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                idle += 0.5
                if idle_seconds is not None and idle >= idle_seconds:
                    break
                continue
            idle = 0.0
            for records in batch.values():
                for r in records:
                    h = {k: v.decode(errors="replace") for k, v in (r.headers or ())}
                    code = h.get("ce_regioncode")
                    if prefix is not None and not (code or "").startswith(prefix):
                        continue
                    try:
                        data = json.loads(r.value or b"null")
                    except ValueError:
                        data = None
                    out(line(h.get("ce_type", "?"), h.get("ce_subject", "?"), code, h.get("ce_time", "?"), data))
                    printed += 1
    finally:
        await consumer.stop()
    return printed


async def follow_feed(
    url: str,
    token: str,
    *,
    after: int = 0,
    types: Sequence[str] = (),
    region: str | None = None,
    wait: float = 10.0,
    max_events: int | None = None,
    idle_polls: int | None = None,
    out: Printer = _print,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Page through ``GET /api/v1/feed?after=<cursor>`` (long-polling ``wait`` seconds when nothing is new) and
    print the events; the feed holds only the token's jurisdiction (narrowed by ``region``). Resume a stopped
    follower with ``after`` = the last cursor it printed. Stops after ``max_events`` or ``idle_polls`` empty
    pages."""
    printed = empty = 0
    params: dict[str, Any] = {"limit": 500, "wait": wait}
    if types:
        params["types"] = ",".join(types)
    if region:
        params["region"] = region
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=wait + 30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        while max_events is None or printed < max_events:
            r = await client.get("/api/v1/feed", params={**params, "after": after})
            r.raise_for_status()
            page = r.json()
            if not page["events"]:
                empty += 1
                if idle_polls is not None and empty >= idle_polls:
                    break
                continue
            empty = 0
            for e in page["events"]:
                out(line(e["type"], e["subject"], e.get("regioncode"), e["time"], e["data"]))
                printed += 1
            after = int(page["next_cursor"])
    return printed


def add_security_arguments(parser: argparse.ArgumentParser) -> None:
    """The broker security flags (this consumer and ``agency_producer.py``): SASL/SCRAM with the agency's principal,
    optionally TLS."""
    parser.add_argument("--security-protocol", default="PLAINTEXT",
                        choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
                        help="SASL_PLAINTEXT or SASL_SSL with the agency's principal "
                             "(default PLAINTEXT: the dev stack)")
    parser.add_argument("--sasl-mechanism", default="SCRAM-SHA-512",
                        choices=["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
    parser.add_argument("--sasl-username", help="the agency's principal, e.g. agency-lishui")
    parser.add_argument("--sasl-password", help="its password (better: the environment, ZJTX_AGENCY_SASL_PASSWORD)")
    parser.add_argument("--ssl-cafile", help="CA certificate for SSL/SASL_SSL (default: the system's)")


def broker_security(args: argparse.Namespace) -> dict[str, Any]:
    """AIOKafka client settings for the broker's security from the command line (SASL/SCRAM, optionally TLS)."""
    options: dict[str, Any] = {"security_protocol": args.security_protocol}
    if args.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=args.ssl_cafile)
    if args.security_protocol.startswith("SASL_"):
        password = args.sasl_password or os.environ.get("ZJTX_AGENCY_SASL_PASSWORD")
        if not args.sasl_username or not password:
            raise SystemExit("SASL needs --sasl-username and --sasl-password (or ZJTX_AGENCY_SASL_PASSWORD)")
        options.update(sasl_mechanism=args.sasl_mechanism, sasl_plain_username=args.sasl_username,
                       sasl_plain_password=password)
    return options


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Follow zjtx's events (broker or HTTP feed), one line each.")
    sub = parser.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("broker", help="read the topics from Kafka")
    b.add_argument("--bootstrap", required=True)
    b.add_argument("--name", required=True, help="the agency's short name: group agency-<name>")
    b.add_argument("--topic", action="append", dest="topics", help="topic (repeatable; default all five)")
    b.add_argument("--region", help="print only this region's events (ce_regioncode)")
    b.add_argument("--max-events", type=int)
    b.add_argument("--idle-seconds", type=float)
    add_security_arguments(b)
    f = sub.add_parser("feed", help="page through the monitor's GET /api/v1/feed")
    f.add_argument("--url", required=True, help="base URL of the gateway or the monitor service")
    f.add_argument("--token", required=True, help="bearer token (role agency, region = jurisdiction)")
    f.add_argument("--after", type=int, default=0, help="cursor to start after (0: from the beginning)")
    f.add_argument("--types", help="comma-separated event types")
    f.add_argument("--region", help="a region within the token's jurisdiction")
    f.add_argument("--wait", type=float, default=10.0, help="long-poll seconds")
    f.add_argument("--max-events", type=int)
    f.add_argument("--idle-polls", type=int)
    args = parser.parse_args(argv)
    if args.mode == "broker":
        asyncio.run(follow_broker(args.bootstrap, args.name, topics=args.topics or TOPICS, region=args.region,
                                  max_events=args.max_events, idle_seconds=args.idle_seconds,
                                  **broker_security(args)))
    else:
        asyncio.run(follow_feed(args.url, args.token, after=args.after,
                                types=[t for t in (args.types or "").split(",") if t], region=args.region,
                                wait=args.wait, max_events=args.max_events, idle_polls=args.idle_polls))
    return 0


if __name__ == "__main__":
    sys.exit(main())

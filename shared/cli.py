"""``zjtx`` command line: tokens, migrations, serving one service, topics, and the whole dev stack."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from shared.services import descriptor, descriptors, load_attribute, service_names

# Light imports only at module level: ``zjtx run`` supervises in this process and keeps no application code.
SERVICES = service_names()
ROLES = ("province_official", "city_official", "county_official", "commissioner", "enterprise", "agency", "admin")


def _token(args: argparse.Namespace) -> int:
    from shared.auth import issue_token
    from shared.settings import get_settings

    settings = get_settings(SERVICES[0])
    private_key = Path(args.private_key).read_text() if args.private_key else None
    print(
        issue_token(
            settings, role=args.role, region=args.region, sub=args.sub, uscc=args.uscc, ttl=args.ttl,
            private_key=private_key,
        )
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from shared.migrations import upgrade
    from shared.settings import get_settings

    unknown = sorted(set(args.services) - set(SERVICES))
    if unknown:
        print(f"未知服务 (unknown service): {', '.join(unknown)}; choose from {', '.join(SERVICES)}", file=sys.stderr)
        return 2
    for service in args.services or SERVICES:
        upgrade(service, get_settings(service).database_url)
        print(f"{service}: at head")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from shared import import_hiding
    from shared.settings import get_settings

    settings = get_settings(args.service)
    if settings.jwt_algorithm == "HS256":
        # PyJWT imports cryptography when installed, for the RSA/EC algorithms only (RS256 with a JWKS); an HS256
        # service never uses them: ~11 MiB of RSS per service (its Rust library, OpenSSL bindings, 50 modules).
        import_hiding(("jwt",), ("cryptography",))
    uvicorn.run(
        descriptor(args.service).app,
        factory=True,
        host=args.host,
        port=args.port or settings.http_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=15,
    )
    return 0


def _topics(args: argparse.Namespace) -> int:
    from shared.events.kafka import provision_topics
    from shared.settings import get_settings

    asyncio.run(provision_topics(get_settings(SERVICES[0]), repair=args.repair))
    print("topics provisioned")
    return 0


def _contracts(args: argparse.Namespace) -> int:
    from shared.events.contracts import generate, rendered

    docs = Path(args.docs)
    if args.check:
        stale = [rel for rel, text in rendered().items()
                 if not (docs / rel).exists() or (docs / rel).read_text(encoding="utf-8") != text]
        for rel in stale:
            print(f"out of date: {docs / rel}")
        return 1 if stale else 0
    for path in generate(docs):
        print(path)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from shared.demo import load_all, print_tokens

    load_all(args.size)
    if args.print_tokens:
        print_tokens()
    return 0


def _run(args: argparse.Namespace) -> int:
    from shared.devstack import run_stack

    return run_stack(demo_size=args.demo_size, reset=args.reset)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zjtx", description="zjtx 专精特新梯度培育 backend")
    sub = parser.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("token", help="打印一个开发环境可用的令牌 (print a token the dev stack accepts)")
    t.add_argument("--role", required=True, choices=ROLES)
    t.add_argument("--region", required=True, help="GB/T 2260 code, e.g. 330110")
    t.add_argument("--uscc")
    t.add_argument("--sub")
    t.add_argument("--ttl", type=int, default=3600)
    t.add_argument("--private-key", help="PEM file for RS256")
    t.set_defaults(fn=_token)

    m = sub.add_parser("migrate", help="alembic upgrade head for each service")
    # (no ``choices`` with nargs="*": Python 3.11's argparse checks the empty default against them)
    m.add_argument("services", nargs="*", metavar="SERVICE", help="默认全部 (default: all): " + ", ".join(SERVICES))
    m.set_defaults(fn=_migrate)

    s = sub.add_parser("serve", help="run one service (HTTP + relay + consumer)")
    s.add_argument("service", choices=SERVICES)
    s.add_argument("--host", default=os.environ.get("ZJTX_HOST", "127.0.0.1"))
    s.add_argument("--port", type=int)
    s.set_defaults(fn=_serve)

    tp = sub.add_parser("topics", help="create the declared Kafka topics")
    tp.add_argument("--repair", action="store_true",
                    help="also recreate topics with other partitions than declared (a broker restarted empty)")
    tp.set_defaults(fn=_topics)

    c = sub.add_parser("contracts", help="生成事件契约 (JSON Schemas, AsyncAPI 3.0, docs/events.md from the contracts)")
    c.add_argument("--docs", default="docs", help="the docs directory (default: docs)")
    c.add_argument("--check", action="store_true", help="only report files that differ from the contracts")
    c.set_defaults(fn=_contracts)

    d = sub.add_parser("demo", help="加载演示数据 (load every service's demo data; idempotent)")
    d.add_argument("--size", type=int, default=int(os.environ.get("ZJTX_DEMO_SIZE", "2000")))
    d.add_argument("--print-tokens", action="store_true", help="then print a token per demo role")
    d.set_defaults(fn=_demo)

    r = sub.add_parser("run", help="the whole system on embedded PostgreSQL and Tansu, with demo data")
    r.add_argument("--demo-size", type=int, default=int(os.environ.get("ZJTX_DEMO_SIZE", "2000")))
    r.add_argument("--reset", action="store_true", help="wipe .zjtx/ first")
    r.set_defaults(fn=_run)

    for provider in descriptors():  # subcommands a service provides (e.g. replay)
        if provider.cli:
            load_attribute(provider.cli)(sub)

    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())

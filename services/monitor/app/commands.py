"""The monitor's ``zjtx`` subcommands, found through its descriptor (``cli``). Light at import: ``zjtx`` builds
its parser in the supervising process; the work is imported when the command runs."""

from __future__ import annotations

import argparse
import asyncio
from datetime import date
from typing import Any

from shared.services import service_names


def _replay(args: argparse.Namespace) -> int:
    from services.monitor.app.replay import replay

    types = [t.strip() for t in (args.types or "").split(",") if t.strip()]
    result = asyncio.run(replay(args.service, args.since, types))
    print(f"{result.service}: {result.published} archived events replayed via {result.topic}, {result.applied} applied")
    return 0


def add_commands(sub: Any) -> None:
    """``zjtx replay SERVICE [--from DATE] [--types T,…]``."""
    r = sub.add_parser("replay", help="从事件归档重建一个服务的读模型 (rebuild read models from the archive)")
    r.add_argument("service", choices=[s for s in service_names() if s != "monitor"])
    r.add_argument("--from", dest="since", type=date.fromisoformat, help="只重放此日期 (YYYY-MM-DD) 起的事件")
    r.add_argument("--types", help="只重放这些事件类型 (逗号分隔)")
    r.set_defaults(fn=_replay)

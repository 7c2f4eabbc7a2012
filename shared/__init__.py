"""The common library of the zjtx services.

Importing it first (every service process starts as ``python -m shared.cli serve …``) keeps rich and pygments
out of the process when logs are JSON (``ZJTX_LOG_JSON``, the default): ``import structlog`` imports its dev
console renderer and ``import httpx`` its command-line client, and both import them when installed (~5 MiB per
service, never used). They are hidden while those two are imported, which then take their fallbacks (a plain
console renderer; an ``httpx`` command asking for ``httpx[cli]``)."""

from __future__ import annotations

import os
import sys


def _import_without_rich() -> None:
    if os.environ.get("ZJTX_LOG_JSON", "true").lower() in ("0", "false", "no", "off"):
        return
    wanted = [name for name in ("structlog", "httpx") if name not in sys.modules]
    hidden = [name for name in ("rich", "pygments", "better_exceptions") if name not in sys.modules]
    if not wanted or not hidden:
        return
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes ``import name`` raise ImportError
    try:
        for name in wanted:
            __import__(name)
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


_import_without_rich()

"""The common library of the zjtx services.

Importing it first (every service process starts as ``python -m shared.cli serve …``) keeps rich and pygments
out of the process when logs are JSON (``ZJTX_LOG_JSON``, the default): ``import structlog`` imports its dev
console renderer and ``import httpx`` its command-line client, and both import them when installed (~5 MiB per
service, never used). They are hidden while those two are imported, which then take their fallbacks (a plain
console renderer; an ``httpx`` command asking for ``httpx[cli]``)."""

from __future__ import annotations

import os
import sys


def import_hiding(modules: tuple[str, ...], hidden: tuple[str, ...]) -> None:
    """Import ``modules`` (those not imported yet) as if ``hidden`` were not installed: each takes the fallback
    it has for their absence. Only for optional imports a process never uses (what imports a hidden module later
    gets it as usual)."""
    wanted = [name for name in modules if name not in sys.modules]
    hidden = tuple(name for name in hidden if name not in sys.modules)
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


def _import_without_rich() -> None:
    if os.environ.get("ZJTX_LOG_JSON", "true").lower() in ("0", "false", "no", "off"):
        return
    import_hiding(("structlog", "httpx"), ("rich", "pygments", "better_exceptions"))


_import_without_rich()

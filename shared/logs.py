"""structlog JSON logs carrying request id, event id and correlation id from context."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any


def _import_structlog_without_rich() -> None:
    """``import structlog`` imports its dev console renderer, which imports rich and pygments when installed
    (~5 MiB per service). JSON logs (the default, ``ZJTX_LOG_JSON``) never use them: hide them while structlog
    is imported, so its renderer takes its plain-text fallback for console logs."""
    if "structlog" in sys.modules or os.environ.get("ZJTX_LOG_JSON", "true").lower() in ("0", "false", "no", "off"):
        return
    hidden = [name for name in ("rich", "better_exceptions") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes ``import name`` raise ImportError
    try:
        import structlog  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


_import_structlog_without_rich()

import structlog  # noqa: E402

from shared.context import correlation_id_var, event_id_var, request_id_var, uscc_var  # noqa: E402


def _add_context(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    pairs = (
        ("request_id", request_id_var),
        ("event_id", event_id_var),
        ("correlation_id", correlation_id_var),
        ("uscc", uscc_var),
    )
    for key, var in pairs:
        value = var.get()
        if value and key not in event_dict:
            event_dict[key] = value
    return event_dict


def configure_logging(service: str, level: str = "INFO", json_logs: bool = True) -> None:
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_context,
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json_logs else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.contextvars.bind_contextvars(service=service)
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

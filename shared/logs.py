"""JSON logs carrying request id, event id, correlation id and USCC from context (structlog's console renderer when
``ZJTX_LOG_JSON`` is off)."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from shared.context import correlation_id_var, event_id_var, request_id_var, uscc_var


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


_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the keys structlog's processor chain wrote (event, the record's extras, the
    context's ids, service, level, logger, timestamp) and an exception's traceback as text, in microseconds:
    structlog's chain took about twice as long, per request for the guard's request line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._second = -1
        self._stamp = ""

    def _timestamp(self, created: float) -> str:
        """ISO 8601 in UTC with microseconds, as structlog's TimeStamper wrote it (the date part once a second)."""
        second = int(created)
        if second != self._second:
            self._second, self._stamp = second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp}.{int((created - second) * 1e6):06d}Z"

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"event": record.getMessage()}
        fields = record.__dict__
        for key in fields.keys() - _RECORD_FIELDS:
            line[key] = fields[key]
        _add_context(None, "", line)
        line.setdefault("service", self.service)
        line["level"] = record.levelname.lower()
        line["logger"] = record.name
        line["timestamp"] = self._timestamp(record.created)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(service: str, level: str = "INFO", json_logs: bool = True) -> None:
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_context,
        structlog.stdlib.ExtraAdder(),
    ]
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter: logging.Formatter = JsonFormatter(service) if json_logs else structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.dev.ConsoleRenderer()],
    )
    # Neither format shows the process: not looking it up saves a getpid system call per line (the logging docs'
    # "Optimization"; ~14 µs of a ~50 µs line in this sandbox, where system calls are slow).
    logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.contextvars.bind_contextvars(service=service)
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

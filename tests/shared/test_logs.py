"""Log lines carry request id, event id, correlation id and USCC from context."""

from __future__ import annotations

import json
import logging

from shared.context import event_id_var, request_id_var, uscc_var
from shared.logs import _add_context, configure_logging


def test_context_fields_are_added_to_every_log_line() -> None:
    tokens = [request_id_var.set("r-1"), event_id_var.set("e-1"), uscc_var.set("91330100716105852F")]
    try:
        line = _add_context(None, "info", {"event": "x"})
    finally:
        for var, tok in zip((request_id_var, event_id_var, uscc_var), tokens, strict=True):
            var.reset(tok)
    assert line["request_id"] == "r-1"
    assert line["event_id"] == "e-1"
    assert line["uscc"] == "91330100716105852F"
    assert "uscc" not in _add_context(None, "info", {"event": "y"})


def test_json_renderer_emits_chinese_verbatim(capsys) -> None:  # type: ignore[no-untyped-def]
    configure_logging("registry", "INFO", json_logs=True)
    token = uscc_var.set("91330100716105852F")
    try:
        logging.getLogger("zjtx.test").info("企业已登记", extra={"region": "330110"})
    finally:
        uscc_var.reset(token)
        configure_logging("registry", "WARNING", json_logs=False)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "企业已登记"
    assert line["uscc"] == "91330100716105852F" and line["region"] == "330110" and line["service"] == "registry"


def test_json_lines_carry_the_traceback_and_the_request_line_fields(capsys) -> None:  # type: ignore[no-untyped-def]
    configure_logging("evaluation", "INFO", json_logs=True)
    token = request_id_var.set("rid-1")
    try:
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            logging.getLogger("zjtx.test").exception("处理失败 %s", "x")
        logging.getLogger("zjtx.http").info("request", extra={"method": "GET", "path": "/p", "status": 200, "ms": 1.5})
    finally:
        request_id_var.reset(token)
        configure_logging("registry", "WARNING", json_logs=False)
    failed, request = (json.loads(x) for x in capsys.readouterr().err.strip().splitlines()[-2:])
    assert failed["event"] == "处理失败 x" and failed["level"] == "error" and failed["service"] == "evaluation"
    assert "ZeroDivisionError: division by zero" in failed["exception"] and "Traceback" in failed["exception"]
    assert {k: request[k] for k in ("event", "method", "path", "status", "ms", "request_id", "logger")} == {
        "event": "request", "method": "GET", "path": "/p", "status": 200, "ms": 1.5, "request_id": "rid-1",
        "logger": "zjtx.http"}
    assert request["timestamp"].endswith("Z") and len(request["timestamp"]) == len("2026-01-01T00:00:00.000000Z")


def test_request_ids_are_unique_and_as_long_as_a_uuid_hex() -> None:
    from shared.http.guard import new_request_id

    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)

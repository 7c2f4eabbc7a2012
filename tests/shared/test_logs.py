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

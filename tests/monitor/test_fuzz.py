"""Property-based fuzzing (schemathesis) of the monitor's API: bad input is a 4xx problem+json, never a 5xx, and
successful answers match the documented schemas. The archive and read models hold the test programme; requests
come in turn from the province, a 莲都 county official, a 丽水 agency and an enterprise. The SSE stream is left
out (it never ends); long-polls are capped at 0.2 s for the run."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from services.monitor.config import monitor_settings
from services.monitor.main import build_app
from shared.db import create_engine
from shared.problems import PROBLEM_JSON
from tests.harness import auth, truncate_schema
from tests.harness import settings as service_settings
from tests.monitor import programme as p
from tests.monitor.conftest import apply

IDENTITIES = [
    auth("province_official", "330000"),
    auth("county_official", p.LIANDU),
    auth("agency", p.LISHUI),
    auth("enterprise", p.LIANDU, uscc=p.A[1]),
]
_ROTATION = itertools.cycle(IDENTITIES)

APP = build_app(service_settings("monitor", run_relay=False, run_consumer=False))
SCHEMA = schemathesis.openapi.from_dict(APP.openapi()).exclude(path="/api/v1/feed/stream")
SCHEMA.app = APP


def _problem_json(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith(PROBLEM_JSON), f"{response.status_code} answered as {content_type!r}"
    body = json.loads(response.content)
    assert body.get("status") == response.status_code and body.get("detail"), body
    return None


def _conforms(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code >= 400:
        return None
    return case.operation.validate_response(response, case=case)


@pytest.fixture(scope="module")
def client() -> Iterator[asgi.ASGIClient]:
    async def seed() -> None:
        engine = create_engine(service_settings("monitor").database_url, 2)
        try:
            await truncate_schema(engine, "monitor")
            await apply(engine, p.events())
        finally:
            await engine.dispose()

    asyncio.run(seed())
    mp = pytest.MonkeyPatch()
    mp.setenv("ZJTX_MONITOR_MAX_WAIT_SECONDS", "0")
    monitor_settings.cache_clear()
    started = asgi.get_client(build_app(service_settings("monitor", run_relay=False, run_consumer=False)))
    try:
        yield started.__enter__()
    finally:
        started.__exit__(None, None, None)
        asgi.shutdown_lifespans()
        mp.undo()
        monitor_settings.cache_clear()


@SCHEMA.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False, suppress_health_check=list(HealthCheck))
def test_monitor_api_never_answers_5xx(case: Any, client: asgi.ASGIClient) -> None:
    headers = next(_ROTATION)
    response = case.call(session=client, headers=headers)
    case.validate_response(response, checks=[not_a_server_error, _problem_json, _conforms], headers=headers)

"""Property-based API fuzzing (schemathesis) of every service: bad input is a 4xx problem+json, never a 5xx.

Each service is built in-process with relay, consumer and workers off (as ``tests.harness.running_service``
does) and its lifespan is started once on schemathesis' ASGI portal, so every generated request reaches the
app, its real PostgreSQL schema included, on one event loop. Schemathesis generates valid and invalid
requests (positive and negative modes, plus boundary-value examples) for every operation of the app's own
OpenAPI document; examples are sent in turn as a province official, a county official (330110) and an
enterprise (91330100716105852F, registered before the run). Checks:

- no server error (status < 500);
- every status >= 400 is ``application/problem+json`` with ``status`` and ``detail``;
- successful responses conform to the documented response schema.

Hypothesis is derandomized with a bounded number of examples per operation, so runs are stable and quick.
Evaluation comes last.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from services.registry.db.seed import region_rows, upsert_regions_stmt
from shared.problems import PROBLEM_JSON
from tests.finance.gateway import GatewayServer
from tests.harness import auth, engine_for, truncate_schema
from tests.harness import settings as service_settings

SERVICES = ("registry", "finance", "notification", "evaluation")
USCC = "91330100716105852F"
IDENTITIES: dict[str, dict[str, str]] = {
    "province": auth("province_official", "330000"),
    "county": auth("county_official", "330110"),
    "enterprise": auth("enterprise", "330110", uscc=USCC),
}
# Per operation and generation mode; raise it locally (ZJTX_FUZZ_EXAMPLES=200) to dig deeper.
MAX_EXAMPLES = int(os.environ.get("ZJTX_FUZZ_EXAMPLES", "20"))


def _build(service: str, **overrides: Any) -> FastAPI:
    """The service as ``tests.harness.running_service`` builds it: relay, consumer and workers off."""
    module = importlib.import_module(f"services.{service}.main")
    app: FastAPI = module.build_app(service_settings(service, run_relay=False, run_consumer=False, **overrides))
    return app


# Apps the schemas are read from (and cases are attributed to); the ones serving requests are started per run.
APPS: dict[str, FastAPI] = {svc: _build(svc) for svc in SERVICES}


def _schema(service: str) -> Any:
    schema = schemathesis.openapi.from_dict(APPS[service].openapi())
    schema.app = APPS[service]
    schema.config.generation.update(max_examples=MAX_EXAMPLES)
    return schema


def problem_json(ctx: Any, response: Any, case: Any) -> bool | None:
    """Errors are RFC 9457: problem+json with the status and a detail."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith(PROBLEM_JSON), f"{response.status_code} answered as {content_type!r}"
    body = json.loads(response.content)
    assert body.get("status") == response.status_code and body.get("detail"), body
    return None


def success_conforms(ctx: Any, response: Any, case: Any) -> bool | None:
    """Successful responses match the documented schema (errors are problem+json, checked above)."""
    if response.status_code >= 400:
        return None
    return case.operation.validate_response(response, case=case)


CHECKS = [not_a_server_error, problem_json, success_conforms]


async def _reset() -> None:
    for service in SERVICES:
        engine = engine_for(service)
        try:
            await truncate_schema(engine, service)
            if service == "registry":
                async with engine.begin() as conn:
                    await conn.execute(upsert_regions_stmt(), region_rows())
        finally:
            await engine.dispose()


@pytest.fixture(scope="module")
async def clean_schemas() -> AsyncIterator[None]:
    """Every service schema empty (regions loaded) before the run, and again after it."""
    await _reset()
    yield
    await _reset()


@pytest.fixture(scope="module")
def clients(clean_schemas: None) -> Iterator[dict[str, asgi.ASGIClient]]:
    """One started app per service (lifespan on schemathesis' portal), stopped at the end of the module."""
    gateway = GatewayServer().start()  # reconciliation fetches the payment gateway's statement
    overrides: dict[str, dict[str, Any]] = {"finance": {"payment_gateway_url": gateway.url}}
    started: dict[str, asgi.ASGIClient] = {}
    try:
        for service in SERVICES:
            client = asgi.get_client(_build(service, **overrides.get(service, {})))
            started[service] = client.__enter__()
        seed = started["registry"].post(
            "/api/v1/enterprises",
            headers=IDENTITIES["province"],
            json={"uscc": USCC, "name": "杭州示例精密机械有限公司", "region_code": "330110", "industry_code": "3411"},
        )
        assert seed.status_code == 201, seed.text
        yield started
    finally:
        for client in started.values():
            client.__exit__(None, None, None)
        asgi.shutdown_lifespans()
        gateway.stop()


SERVICE_OF: dict[int, str] = {id(app): svc for svc, app in APPS.items()}
# Examples take the identities in turn (deterministic, as the examples are), so each operation meets all three.
_ROTATION = itertools.cycle(IDENTITIES.values())


@schemathesis.pytest.parametrize(**{svc: _schema(svc) for svc in SERVICES})
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Any, clients: dict[str, asgi.ASGIClient]) -> None:
    client = clients[SERVICE_OF[id(case.operation.app)]]
    headers = next(_ROTATION)
    response = case.call(session=client, headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)

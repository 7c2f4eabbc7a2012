"""The FastAPI app factory every service uses: problems, request ids, logs, health, metrics, lifespan."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_fastapi_instrumentator import Instrumentator
from sqlalchemy import text

from shared.context import correlation_id_var, request_id_var, traceparent_var, uscc_var
from shared.logs import configure_logging
from shared.migrations import current_revision, script_heads
from shared.problems import field_error, install_problem_handlers
from shared.runtime import ServiceRuntime, ServiceSpec
from shared.settings import Settings, get_settings

log = logging.getLogger("zjtx.http")

_NUL_MESSAGE = "不能包含空字符 U+0000 (NUL not allowed)"
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _nul_field(value: Any, path: str) -> str | None:
    """Dotted path of the first string (or key) in a decoded JSON value that holds U+0000."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        sub = f"{path}.{key}" if path else str(key)
        if "\x00" in str(key):
            return sub
        if (hit := _nul_field(item, sub)) is not None:
            return hit
    return None


async def reject_nul(request: Request) -> None:
    """PostgreSQL text and jsonb cannot store U+0000: refuse it in any input as a 422 naming the field."""
    for name, value in request.path_params.items():
        if "\x00" in str(value):
            raise field_error(name, _NUL_MESSAGE)
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise field_error(name, _NUL_MESSAGE)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(_FORM_TYPES):
        for name, value in (await request.form()).multi_items():
            text_ = value if isinstance(value, str) else value.filename or ""
            if "\x00" in name or "\x00" in text_:
                raise field_error(name, _NUL_MESSAGE)
        return
    body = await request.body()
    if b"\\u0000" in body:  # the only way JSON carries U+0000
        try:
            data = json.loads(body)
        except ValueError:
            return  # not JSON: the route's body validation answers
        if (field := _nul_field(data, "")) is not None:
            raise field_error(field or "body", _NUL_MESSAGE)


_USCC_IN_PATH = re.compile(r"/enterprises/([0-9A-HJ-NPQRTUWXY]{18})(?:/|$)")


def create_app(spec: ServiceSpec, routers: list[APIRouter], settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings(spec.name)
    configure_logging(spec.name, settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ServiceRuntime.build(spec, settings)
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version="1.0.0",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    install_problem_handlers(app)

    @app.middleware("http")
    async def request_context(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        request_id_var.set(rid)
        correlation_id_var.set(request.headers.get("x-correlation-id") or rid)
        traceparent_var.set(request.headers.get("traceparent"))
        found = _USCC_IN_PATH.search(request.url.path)
        uscc_var.set(found.group(1) if found else None)
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-ID"] = rid
        if request.url.path not in ("/healthz", "/readyz", "/metrics"):
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
        return response

    health = APIRouter(tags=["health"])

    @health.get("/healthz", summary="存活检查 (liveness)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @health.get("/readyz", summary="就绪检查 (readiness: DB, broker, migrations)")
    async def readyz(request: Request) -> JSONResponse:
        runtime: ServiceRuntime = request.app.state.runtime
        checks: dict[str, Any] = {}
        try:
            async with runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                revision = await conn.run_sync(lambda c: current_revision(c, settings.db_schema))
            checks["database"] = "ok"
            heads = script_heads(spec.name)
            checks["migrations"] = "ok" if revision in heads else f"at {revision}, head {','.join(heads)}"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
            checks["migrations"] = "unknown"
        needs_kafka = settings.run_relay or settings.run_consumer
        checks["broker"] = "ok" if runtime.kafka_ready.is_set() or not needs_kafka else "connecting"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)

    app.include_router(health)
    for router in routers:
        app.include_router(router, dependencies=[Depends(reject_nul)])
    Instrumentator(excluded_handlers=["/metrics", "/healthz", "/readyz"]).instrument(app).expose(
        app, endpoint="/metrics", include_in_schema=False
    )
    return app

"""The FastAPI app factory every service uses: problems, request ids, logs, limits (``shared.http.guard``),
health, metrics, offline API docs, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from shared.events.http import routers as backbone_routers
from shared.http.guard import HttpGuard
from shared.logs import configure_logging
from shared.migrations import current_revision, script_heads
from shared.problems import install_problem_handlers
from shared.runtime import ServiceRuntime, ServiceSpec
from shared.settings import Settings, get_settings

log = logging.getLogger("zjtx.http")

DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_STATIC_URL = "/docs-assets"


def _install_offline_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` served with their scripts and styles from the ``fastapi-offline``
    package, so they work without internet."""
    app.mount(DOCS_STATIC_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            swagger_js_url=f"{root}{DOCS_STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC_URL}/favicon.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )


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
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_problem_handlers(app)
    _install_offline_docs(app)

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
        checks["broker"] = await runtime.broker_status()  # asks the broker now (shared/runtime.py)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)

    app.include_router(health)
    for router in [*routers, *backbone_routers]:  # backbone: parked outbox rows, event contracts
        app.include_router(router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus exposition: the backbone's metrics and the HTTP ones the guard counts."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # Added last, so it is the outermost middleware: limits apply before anything reads the request.
    app.add_middleware(
        HttpGuard,
        openapi=app.openapi,
        body_limit=settings.body_limit,
        rate_ip=settings.rate_limit_ip,
        burst_ip=settings.rate_limit_ip_burst,
        rate_token=settings.rate_limit_token,
        burst_token=settings.rate_limit_token_burst,
        trust_forwarded=settings.trust_forwarded,
    )
    return app

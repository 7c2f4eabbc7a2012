"""ASGI entry point of the registry service: `zjtx serve registry` or uvicorn --factory main:build_app."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from services.registry.app.imports import import_worker
from services.registry.app.recognitions import promotion_worker
from services.registry.db.models import backbone
from services.registry.events.handlers import BATCH_HANDLERS, HANDLERS
from shared.app import create_app
from shared.events.catalog import topic_of
from shared.runtime import ServiceSpec
from shared.settings import Settings

spec = ServiceSpec(
    name="registry",
    title="注册服务 Registry: 企业、区划、年度指标、培育库、目标",
    description="zjtx registry service. 所有接口需要 Bearer 令牌 (JWT)。错误按 RFC 9457 返回 problem+json。",
    backbone=backbone,
    subscribe=[topic_of("evaluation"), topic_of("notification"), topic_of("agency")],
    handlers=HANDLERS,
    batch_handlers=BATCH_HANDLERS,
    workers=[import_worker, promotion_worker],
)


def routers() -> list[APIRouter]:
    from services.registry.api import enterprises, imports, pools, regions, targets

    return [regions.router, enterprises.router, pools.router, targets.router, imports.router]


def build_app(settings: Settings | None = None) -> FastAPI:
    """App factory: ``uvicorn --factory services.registry.main:build_app``."""
    return create_app(spec, routers(), settings)

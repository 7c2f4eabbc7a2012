"""ASGI entry point of the registry service: `uvicorn --factory services.registry.main:build_app` or `zjtx serve registry`."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from services.registry.db.models import backbone
from shared.app import create_app
from shared.runtime import ServiceSpec
from shared.settings import Settings

spec = ServiceSpec(
    name="registry",
    title="注册服务 Registry: 企业、区划、年度指标、培育库、目标",
    description="zjtx registry service. 所有接口需要 Bearer 令牌 (JWT)。错误按 RFC 9457 返回 problem+json。",
    backbone=backbone,
)


def routers() -> list[APIRouter]:
    return []


def build_app(settings: Settings | None = None) -> FastAPI:
    """App factory: ``uvicorn --factory services.registry.main:build_app``."""
    return create_app(spec, routers(), settings)

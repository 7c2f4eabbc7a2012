"""ASGI entry point of the evaluation service: `uvicorn --factory services.evaluation.main:build_app` or `zjtx serve evaluation`."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from services.evaluation.db.models import backbone
from shared.app import create_app
from shared.runtime import ServiceSpec
from shared.settings import Settings

spec = ServiceSpec(
    name="evaluation",
    title="评价服务 Evaluation: 规则集、评分、认定流程",
    description="zjtx evaluation service. 所有接口需要 Bearer 令牌 (JWT)。错误按 RFC 9457 返回 problem+json。",
    backbone=backbone,
)


def routers() -> list[APIRouter]:
    return []


def build_app(settings: Settings | None = None) -> FastAPI:
    """App factory: ``uvicorn --factory services.evaluation.main:build_app``."""
    return create_app(spec, routers(), settings)

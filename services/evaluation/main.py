"""ASGI entry point of the evaluation service.

`uvicorn --factory services.evaluation.main:build_app` or `zjtx serve evaluation`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from services.evaluation.app.workers import expiry_worker, reevaluation_workers, ruleset_sync_worker
from services.evaluation.db.models import backbone
from services.evaluation.events.handlers import BATCH_HANDLERS, HANDLERS
from shared.app import create_app
from shared.events.catalog import topic_of
from shared.runtime import ServiceSpec
from shared.settings import Settings

spec = ServiceSpec(
    name="evaluation",
    title="评价服务 Evaluation: 规则集、评分、认定流程",
    description="zjtx evaluation service. 所有接口需要 Bearer 令牌 (JWT)。错误按 RFC 9457 返回 problem+json。",
    backbone=backbone,
    subscribe=[topic_of("registry"), topic_of("agency"), topic_of("notification")],
    handlers=HANDLERS,
    batch_handlers=BATCH_HANDLERS,
    workers=[ruleset_sync_worker, expiry_worker, reevaluation_workers],
    # each indicator report is several rule sets' evaluations and explanations: 200 a poll keep the set-based
    # batch's round trips amortised, and the service's heap after a burst 168 -> 136 MiB (2,000-enterprise demo)
    max_batch=200,
)


def routers() -> list[APIRouter]:
    from services.evaluation.api import dev, rulesets, simulations, workflow

    return [rulesets.router, workflow.router, simulations.router, dev.router]


def build_app(settings: Settings | None = None) -> FastAPI:
    """App factory: ``uvicorn --factory services.evaluation.main:build_app``."""
    return create_app(spec, routers(), settings)

"""ASGI entry point of the finance service.

`uvicorn --factory services.finance.main:build_app` or `zjtx serve finance`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from services.finance.app.deferrals import deferral_worker
from services.finance.app.payments import disbursement_worker
from services.finance.db.models import backbone
from services.finance.events.handlers import HANDLERS
from shared.app import create_app
from shared.events.catalog import topic_of
from shared.runtime import ServiceSpec
from shared.settings import Settings

spec = ServiceSpec(
    name="finance",
    title="资金服务 Finance: 奖补政策、预算、兑现、拨付",
    description="zjtx finance service. 所有接口需要 Bearer 令牌 (JWT)。错误按 RFC 9457 返回 problem+json。",
    backbone=backbone,
    subscribe=[topic_of("evaluation")],
    handlers=HANDLERS,
    workers=[disbursement_worker, deferral_worker],
)


def routers() -> list[APIRouter]:
    from services.finance.api import budgets, disbursements, entitlements, ledger, policies, recoveries

    return [
        policies.router,
        budgets.router,
        entitlements.router,
        entitlements.enterprises,
        disbursements.router,
        recoveries.router,
        ledger.router,
        ledger.reconciliations,
    ]


def build_app(settings: Settings | None = None) -> FastAPI:
    """App factory: ``uvicorn --factory services.finance.main:build_app``."""
    return create_app(spec, routers(), settings)

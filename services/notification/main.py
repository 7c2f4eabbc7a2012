"""ASGI entry point of the notification service.

`uvicorn --factory services.notification.main:build_app` or `zjtx serve notification`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from services.notification.api.commissioners import router as commissioners_router
from services.notification.api.notifications import router as notifications_router
from services.notification.app.delivery import delivery_worker
from services.notification.app.reminders import scheduler_worker
from services.notification.db.models import backbone
from services.notification.events.handlers import HANDLERS
from shared.app import create_app
from shared.events.catalog import topic_of
from shared.runtime import ServiceSpec
from shared.settings import Settings

spec = ServiceSpec(
    name="notification",
    title="通知服务 Notification: 服务专员、通知、政策推送",
    description="zjtx notification service. 所有接口需要 Bearer 令牌 (JWT)。错误按 RFC 9457 返回 problem+json。",
    backbone=backbone,
    subscribe=[topic_of("evaluation"), topic_of("finance"), topic_of("registry"), topic_of("notification")],
    handlers=HANDLERS,
    workers=[delivery_worker, scheduler_worker],
)


def routers() -> list[APIRouter]:
    return [commissioners_router, notifications_router]


def build_app(settings: Settings | None = None) -> FastAPI:
    """App factory: ``uvicorn --factory services.notification.main:build_app``."""
    return create_app(spec, routers(), settings)

"""ASGI entry point of the monitor service: `zjtx serve monitor` or uvicorn --factory main:build_app."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from services.monitor.app.feed import feed_listener
from services.monitor.app.retention import retention_worker
from services.monitor.db.models import backbone
from services.monitor.events.handlers import BATCH_HANDLERS, HANDLERS
from shared.app import create_app
from shared.events.catalog import PRODUCERS, topic_of
from shared.runtime import ServiceSpec
from shared.settings import Settings

spec = ServiceSpec(
    name="monitor",
    title="监测服务 Monitor: 事件归档与订阅、目标达成、漏斗、资金、预测、年报",
    description=(
        "zjtx monitor service. 所有接口需要 Bearer 令牌 (JWT),页面可用令牌登录。错误按 RFC 9457 返回 problem+json。"
    ),
    backbone=backbone,
    subscribe=[topic_of(p) for p in PRODUCERS],
    handlers=HANDLERS,
    batch_handlers=BATCH_HANDLERS,
    workers=[retention_worker, feed_listener],
)


def routers() -> list[APIRouter]:
    from services.monitor.api import feed, monitor, pages, reports

    return [feed.router, monitor.router, reports.router, pages.router]


def build_app(settings: Settings | None = None) -> FastAPI:
    """App factory: ``uvicorn --factory services.monitor.main:build_app``."""
    app = create_app(spec, routers(), settings)
    from services.monitor.api.pages import mount_static

    mount_static(app)
    return app

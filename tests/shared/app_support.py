"""A throwaway service built with ``shared.app.create_app``: one jurisdiction-checked read and one write that
emits an event, so auth, problems, health and the outbox can be tested without any real service's routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from shared.app import create_app
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.backbone import Backbone
from shared.deps import PrincipalDep, SessionDep, require_roles
from shared.events.outbox import emit
from shared.problems import not_found
from shared.runtime import ServiceSpec
from tests.harness import settings

OfficialOnly = Annotated[Principal, Depends(require_roles(Role.PROVINCE, Role.CITY, Role.COUNTY))]


class ThingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uscc: str = Field(min_length=18, max_length=18, description="统一社会信用代码")
    name: str = Field(min_length=1, max_length=100, description="企业名称")


def test_router(backbone: Backbone) -> APIRouter:
    router = APIRouter(prefix="/api/v1/bbtest", tags=["test"])

    @router.get("/regions/{code}")
    async def read_region(code: str, principal: OfficialOnly) -> dict[str, str]:
        if not principal.covers_region(code):
            raise not_found("地区")
        return {"code": code, "viewer": principal.sub}

    @router.post("/things", status_code=201)
    async def create_thing(body: ThingIn, principal: PrincipalDep, session: SessionDep) -> dict[str, str]:
        async with session.begin():
            eid = await emit(
                session, backbone, "zjtx.registry.enterprise.registered.v1", body.uscc, {"uscc": body.uscc},
                regioncode=principal.region,
            )
            await record_audit(session, backbone, principal, "thing.create", "thing", body.uscc, after=body)
        return {"event_id": str(eid)}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    return router


def build_test_app(backbone: Backbone, **overrides: Any) -> FastAPI:
    spec = ServiceSpec(name="registry", title="测试服务", description="test only", backbone=backbone)
    overrides.setdefault("run_relay", False)
    overrides.setdefault("run_consumer", False)
    # These backbone tests name their own topics, so no per-test namespace applies.
    overrides.setdefault("topic_namespace", "")
    return create_app(spec, [test_router(backbone)], settings("registry", **overrides))


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bbtest") as client:
            yield client

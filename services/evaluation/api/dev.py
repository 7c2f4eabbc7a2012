"""The dev stack's decision date (开发时钟): an admin moves the date the evaluation service decides on, so the
walkthrough can pass a publicity period and decide the next rung of the ladder on the day a title becomes valid.
Refused when ``ZJTX_ENV=prod``; every change audited."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter

from services.evaluation.api.deps import DevAdminDep, PrincipalDep, SessionDep
from services.evaluation.api.schemas import DevClockIn, DevClockOut
from services.evaluation.config import DEV_CLOCK, get_config
from services.evaluation.db.models import backbone
from shared.audit import record_audit
from shared.auth import Principal

router = APIRouter(prefix="/api/v1/dev", tags=["dev clock 开发时钟"])


def _view() -> dict[str, Any]:
    cfg = get_config()
    source = "dev_clock" if DEV_CLOCK.as_of else "ZJTX_EVAL_AS_OF" if cfg.as_of else "today"
    return {"decision_date": cfg.decision_date(), "source": source, "today": date.today()}


@router.get("/clock", response_model=DevClockOut, summary="当前决定日 (the evaluation decision date)")
async def get_clock(principal: PrincipalDep) -> dict[str, Any]:
    return _view()


async def _move(session: SessionDep, principal: Principal, as_of: date | None) -> dict[str, Any]:
    async with session.begin():
        before = _view()
        await record_audit(session, backbone, principal, "dev.clock.set" if as_of else "dev.clock.reset",
                           "dev_clock", "evaluation", before=before,
                           after={"as_of": as_of.isoformat() if as_of else None})
    DEV_CLOCK.as_of = as_of  # after the audit row committed
    return _view()


@router.put("/clock", response_model=DevClockOut, summary="设置决定日 (admin; dev/test only)")
async def set_clock(body: DevClockIn, session: SessionDep, principal: DevAdminDep) -> dict[str, Any]:
    return await _move(session, principal, body.as_of)


@router.delete("/clock", response_model=DevClockOut, summary="恢复为系统日期 (admin; dev/test only)")
async def reset_clock(session: SessionDep, principal: DevAdminDep) -> dict[str, Any]:
    return await _move(session, principal, None)

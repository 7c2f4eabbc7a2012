"""Bulk import jobs (CSV/XLSX with Chinese headers) and their progress."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, UploadFile
from pydantic import BaseModel, Field

from services.registry import imports
from services.registry.db.models import ImportJob, backbone
from shared.audit import record_audit
from shared.auth import Role
from shared.deps import PrincipalDep, SessionDep
from shared.problems import Problem, not_found

router = APIRouter(prefix="/api/v1", tags=["imports 批量导入"])

MAX_BYTES = 50 * 1024 * 1024


class JobOut(BaseModel):
    id: uuid.UUID
    kind: str = Field(description="enterprises 企业 / indicators 指标")
    mode: str = Field(description="all_or_nothing 全部成功才导入 / accept_valid 导入有效行")
    status: str = Field(description="queued 排队 / running 处理中 / done 完成 / failed 失败")
    filename: str | None
    rows_total: int = Field(description="总行数")
    rows_done: int = Field(description="已处理行数")
    rows_imported: int = Field(description="已导入行数")
    error_count: int
    errors: list[dict[str, Any]] = Field(description="错误行: row 行号(表头为第1行), column 列, reason 原因")
    detail: str | None
    created_at: datetime
    finished_at: datetime | None


def _out(j: ImportJob) -> JobOut:
    return JobOut(
        id=j.id,
        kind=j.kind,
        mode=j.mode,
        status=j.status,
        filename=j.filename,
        rows_total=j.rows_total,
        rows_done=j.rows_done,
        rows_imported=j.rows_imported,
        error_count=len(j.errors or []),
        errors=j.errors or [],
        detail=j.detail,
        created_at=j.created_at,
        finished_at=j.finished_at,
    )


@router.post("/imports", status_code=202, response_model=JobOut, summary="上传 CSV/XLSX 批量导入(后台作业)")
async def create_import(
    principal: PrincipalDep,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="CSV(UTF-8/GB18030) 或 XLSX,首行为中文表头")],
    kind: Annotated[Literal["enterprises", "indicators"], Query(description="导入内容")],
    mode: Annotated[Literal["all_or_nothing", "accept_valid"], Query(description="导入模式")] = "all_or_nothing",
) -> JobOut:
    officials = principal.is_official or principal.role == Role.ADMIN
    if kind == "enterprises" and not officials:
        raise Problem(403, "只有主管部门可以批量登记企业")
    if kind == "indicators" and not (officials or principal.role in (Role.AGENCY, Role.ENTERPRISE)):
        raise Problem(403, "当前角色无权导入指标")
    content = await file.read(MAX_BYTES + 1)
    if len(content) > MAX_BYTES:
        raise Problem(413, "文件过大(上限 50 MB)")
    if not content:
        raise Problem(422, "文件为空", errors=[{"field": "file", "message": "文件为空"}])
    async with session.begin():
        job = ImportJob(
            id=uuid.uuid4(),
            kind=kind,
            mode=mode,
            status="queued",
            filename=file.filename,
            content=content,
            principal=principal.model_dump(mode="json"),
            errors=[],
            rows_total=0,
            rows_done=0,
            rows_imported=0,
        )
        session.add(job)
        await record_audit(
            session,
            backbone,
            principal,
            "import.create",
            "import_job",
            str(job.id),
            after={"kind": kind, "mode": mode, "filename": file.filename, "bytes": len(content)},
        )
        await session.flush()
        await session.refresh(job)
    imports.wake_event().set()
    return _out(job)


@router.get("/jobs/{job_id}", response_model=JobOut, summary="导入作业进度与错误")
async def get_job(job_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> JobOut:
    async with session.begin():
        job = await session.get(ImportJob, job_id)
        if job is None or (principal.role != Role.ADMIN and job.principal.get("sub") != principal.sub):
            raise not_found("导入作业")
        return _out(job)

"""Bulk import jobs (CSV/XLSX with Chinese headers) and their progress."""

from __future__ import annotations

import io
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import StreamingResponse

from services.registry.api.deps import PrincipalDep, SessionDep
from services.registry.api.schemas import JobOut
from services.registry.app import imports as cases
from services.registry.db.models import ImportJob
from shared.http import body_limit
from shared.spreadsheets import write_xlsx

router = APIRouter(prefix="/api/v1", tags=["imports 批量导入"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _out(j: ImportJob) -> JobOut:
    return JobOut(
        id=j.id,
        kind=j.kind,
        mode=j.mode,
        status=j.status,
        attempts=j.attempts,
        superseded_by=j.superseded_by,
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


@router.post(
    "/imports",
    status_code=202,
    response_model=JobOut,
    summary="上传 CSV/XLSX 批量导入(后台作业)",
    openapi_extra=body_limit(cases.MAX_BYTES + (1 << 20)),  # the file plus its multipart envelope
)
async def create_import(
    principal: PrincipalDep,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="CSV(UTF-8/GB18030) 或 XLSX,首行为中文表头")],
    kind: Annotated[Literal["enterprises", "indicators"], Query(description="导入内容")],
    mode: Annotated[Literal["all_or_nothing", "accept_valid"], Query(description="导入模式")] = "all_or_nothing",
    supersedes: Annotated[
        uuid.UUID | None, Query(description="取代本人此前未完成的同类导入作业(该作业不再执行)")
    ] = None,
) -> JobOut:
    content = await file.read(cases.MAX_BYTES + 1)
    async with session.begin():
        job = await cases.create_job(session, principal, kind, mode, file.filename, content, supersedes)
    cases.wake_event().set()
    return _out(job)


@router.get(
    "/imports/templates/{kind}",
    summary="导入模板(XLSX,首行为可识别的中文表头)",
    response_class=StreamingResponse,
    responses={200: {"content": {XLSX: {}}, "description": "模板文件"}},
)
async def template(
    kind: Annotated[Literal["enterprises", "indicators"], Path(description="导入内容")], _: PrincipalDep
) -> StreamingResponse:
    name = {"enterprises": "企业登记", "indicators": "年度指标"}[kind]
    return StreamingResponse(
        io.BytesIO(write_xlsx(name, [cases.template_headers(kind)])),
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename=\"import-{kind}.xlsx\""},
    )


@router.get("/jobs/{job_id}", response_model=JobOut, summary="导入作业进度与错误")
async def get_job(job_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> JobOut:
    async with session.begin():
        return _out(await cases.get_job(session, principal, job_id))

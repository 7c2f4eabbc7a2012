"""GET /api/v1/monitor/reports/annual: the annual report as an XLSX workbook."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.monitor.api.deps import ReaderDep, SessionDep, YearQuery, in_jurisdiction
from services.monitor.app.annual_report import annual_report

router = APIRouter(prefix="/api/v1/monitor/reports", tags=["monitor 监测"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/annual", response_class=Response, summary="年度报表 (XLSX,中文表头,每表一页)",
            responses={200: {"content": {XLSX: {}}, "description": "XLSX 工作簿"}})
async def annual(principal: ReaderDep, session: SessionDep, year: YearQuery,
                 region: Annotated[str | None, Query(description="区划代码 (默认令牌所属区划)")] = None) -> Response:
    code = in_jurisdiction(principal, region)
    filename, content = await annual_report(session, code, year)
    return Response(content, media_type=XLSX,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})

"""The annual report workbook (XLSX, Chinese headers, one sheet per table), from the same use cases as the API."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor.app import reporting
from services.monitor.domain.funnel import STAGE_NAMES, STAGES
from shared.spreadsheets import safe_cell

Sheet = tuple[str, list[str], list[list[Any]]]

ATTAINMENT_HEADERS = ["区划代码", "区划名称", "梯度", "目标数", "有效认定数", "达成率"]
RECOGNITION_HEADERS = ["梯度", "有效", "当年新认定", "已到期", "已撤销"]
FUNNEL_HEADERS = ["区划代码", "区划名称", "培育库在库", "申报数", *(STAGE_NAMES[s] for s in (*STAGES, "rejected")),
                  "当年新认定"]
MONEY_HEADERS = ["区划代码", "区划名称", "奖补笔数", "应奖补(元)", "已审批(元)", "已拨付(元)", "已追回(元)", "预算(元)",
                 "支出率"]

NOTICE_REGION_HEADERS = ["区划代码", "区划名称", "通知总数", "发给企业", "差距提示"]
NOTICE_KIND_HEADERS = ["通知类别", "梯度", "发给企业", "发给服务专员", "发给主管部门", "另经短信/邮件", "合计"]


def _num(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


async def sheets(session: AsyncSession, code: str, year: int) -> list[Sheet]:
    att = await reporting.attainment(session, code, year)
    rec = await reporting.recognitions(session, code, year)
    fun = await reporting.funnel(session, code, year)
    mon = await reporting.money(session, code, year)
    notes = await reporting.notices(session, code, year)
    return [
        ("目标达成", ATTAINMENT_HEADERS,
         [[r.region.code, r.region.name, r.tier_name, r.target, r.actual, r.ratio] for r in (*att.total, *att.rows)]),
        ("认定情况", RECOGNITION_HEADERS,
         [[r.tier_name, r.current, r.new, r.expired, r.revoked] for r in rec.rows]),
        ("培育漏斗", FUNNEL_HEADERS,
         [[r.region.code, r.region.name, r.pool, r.applied, *(r.stages[s] for s in (*STAGES, "rejected")),
           r.recognised] for r in (fun.total, *fun.rows)]),
        ("奖补资金", MONEY_HEADERS,
         [[r.region.code, r.region.name, r.entitlements, _num(r.created), _num(r.approved), _num(r.paid),
           _num(r.recovered), _num(r.budget), r.spend_ratio] for r in (mon.total, *mon.rows)]),
        ("通知发送", NOTICE_REGION_HEADERS,
         [[r.region.code, r.region.name, r.total, r.to_enterprises, r.gap_advice] for r in (notes.total, *notes.rows)]),
        ("通知类别", NOTICE_KIND_HEADERS,
         [[r.kind_name, r.tier_name or "", r.to_enterprises, r.to_commissioners, r.to_officials, r.sent_out, r.total]
          for r in notes.by_kind]),
    ]


def workbook(title: str, tables: Sequence[Sheet]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    assert wb.active is not None
    wb.remove(wb.active)
    for name, headers, rows in tables:
        ws = wb.create_sheet(name)
        ws.append([safe_cell(title)])
        ws.append([safe_cell(h) for h in headers])
        for cell in ws[2]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append([safe_cell(v) for v in row])
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, Decimal):
                    cell.number_format = "#,##0.00"
        ws.freeze_panes = "A3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


async def annual_report(session: AsyncSession, code: str, year: int) -> tuple[str, bytes]:
    """(file name, XLSX bytes) of ``code``'s report for ``year``."""
    name = reporting.ref(code).name
    title = f"{name}{year}年度优质中小企业梯度培育工作报表 (统计日 {reporting.as_of_for(year).isoformat()})"
    return f"{code}-{year}-annual-report.xlsx", workbook(title, await sheets(session, code, year))

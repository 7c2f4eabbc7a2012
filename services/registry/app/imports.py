"""Bulk import of enterprises and indicators from CSV/XLSX with Chinese headers, processed as jobs.

A job row is written by the API; the ``import_worker`` (a worker on the service spec) claims queued jobs
with ``FOR UPDATE SKIP LOCKED``, validates every row (progress in ``rows_done``), then writes either all
rows or nothing (``all_or_nothing``) or the valid rows (``accept_valid``) in batched inserts.

Applied once per job: the rows are written in the one transaction that marks the job ``done``, fenced on the
attempt (``attempts``) that claimed it, so an attempt killed before that commit wrote nothing, and one that
lost the job (requeued, superseded) writes nothing. A running job holds a lease (``db/imports.py``); on start
(and while idle) a ``running`` job whose lease is free lost its worker and is queued again at once, unless its
uploader resubmitted the same file after it: then it is ``superseded`` and never rerun.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import logging
import os
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from services.registry.app import enterprises as ent_cases
from services.registry.app import indicators as ind_cases
from services.registry.db import enterprises as ents
from services.registry.db import imports as repo
from services.registry.db.models import ImportJob, backbone
from services.registry.db.regions import RegionIndex, region_index
from services.registry.domain.classify import FOUNDATION_ZH, SCALE_ZH
from services.registry.domain.commands import EnterpriseIn
from services.registry.domain.indicators import MONEY_FIELDS, SELF_REPORT, local_indicators_error, stored_values
from shared.audit import record_audit
from shared.auth import Principal, Role
from shared.indicators import IndicatorSet, consistency_errors
from shared.problems import Problem, not_found
from shared.problems import _zh_message as zh_message

log = logging.getLogger(__name__)

_WAKE: dict[int, asyncio.Event] = {}


def wake_event() -> asyncio.Event:
    """The wake-up event of the running loop (the API sets it when a job is queued; polling is the fallback)."""
    loop_id = id(asyncio.get_running_loop())
    if loop_id not in _WAKE:
        _WAKE[loop_id] = asyncio.Event()
    return _WAKE[loop_id]


CHUNK = 1000
MAX_ERRORS = 5000

ENTERPRISE_HEADERS: dict[str, str] = {
    "统一社会信用代码": "uscc",
    "信用代码": "uscc",
    "企业名称": "name",
    "名称": "name",
    "所属区划": "region_code",
    "区划代码": "region_code",
    "所属区县": "region_code",
    "所在地区": "region_code",
    "行业代码": "industry_code",
    "所属行业代码": "industry_code",
    "国民经济行业代码": "industry_code",
    "成立日期": "founded_on",
    "成立时间": "founded_on",
    "企业规模": "scale",
    "规模": "scale",
    "从业人员": "employees",
    "从业人数": "employees",
    "职工总数": "employees",
    "从业人员数": "employees",
    "营业收入": "operating_revenue",
    "上年营业收入": "operating_revenue",
    "联络员姓名": "liaison.name",
    "服务联络员": "liaison.name",
    "联络员": "liaison.name",
    "联络员手机": "liaison.mobile",
    "联络员电话": "liaison.mobile",
    "联络员手机号": "liaison.mobile",
    "联络员邮箱": "liaison.email",
    "战略性新兴产业类别": "focus.strategic_emerging_category",
    "战略性新兴产业": "focus.strategic_emerging_category",
    "地方重点产业": "focus.local_priority_industry",
    "重点产业": "focus.local_priority_industry",
    "六基领域": "focus.foundations",
    "五基领域": "focus.foundations",
    "工业六基": "focus.foundations",
}
ENTERPRISE_HEADERS.update({f: f for f in EnterpriseIn.model_fields})


def _indicator_headers() -> dict[str, str]:
    out: dict[str, str] = {
        "统一社会信用代码": "uscc",
        "信用代码": "uscc",
        "年度": "year",
        "报告年度": "year",
        "税收": "tax_paid",
        "研发人员": "rd_staff",
        "年份": "year",
    }
    for name, f in IndicatorSet.model_fields.items():
        out[name] = name
        desc = (f.description or "").split(" ")[0]
        if desc:
            out.setdefault(desc, name)
            for suffix in ("(上年度)", "(上年末)"):
                if desc.endswith(suffix):
                    out.setdefault(desc[: -len(suffix)], name)
    out["uscc"], out["year"] = "uscc", "year"
    return out


INDICATOR_HEADERS = _indicator_headers()
SCALE_BY_ZH = {v: k.value for k, v in SCALE_ZH.items()} | {v[0]: k.value for k, v in SCALE_ZH.items()}
FOUNDATION_BY_ZH = {v: k.value for k, v in FOUNDATION_ZH.items()}


def normalise_header(h: str) -> tuple[str, int]:
    """Full-width parentheses → ASCII, spaces dropped, unit suffix removed; returns (header, multiplier)."""
    s = re.sub(r"\s+", "", str(h)).replace("(", "(").replace(")", ")")
    mult = 1
    if s.endswith("(万元)"):
        s, mult = s[: -len("(万元)")], 10000
    elif s.endswith("(元)") or s.endswith("(人)") or s.endswith("(个)"):
        s = s[: s.rindex("(")]
    return s, mult


def read_table(content: bytes, filename: str | None) -> tuple[list[str], list[list[Any]]]:
    """Header and data rows of the first sheet (XLSX) or the CSV (UTF-8 with/without BOM, or GB18030)."""
    is_xlsx = (filename or "").lower().endswith(".xlsx") or content[:2] == b"PK"
    rows: list[list[Any]]
    if is_xlsx:
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:
            raise ValueError(f"无法读取 XLSX 文件: {exc}") from exc
        ws = wb.worksheets[0]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        wb.close()
    else:
        for enc in ("utf-8-sig", "gb18030"):
            try:
                decoded = content.decode(enc)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise ValueError("CSV 编码无法识别(请使用 UTF-8 或 GB18030)")
        rows = [list(r) for r in csv.reader(io.StringIO(decoded))]
    rows = [r for r in rows if any(c not in (None, "") for c in r)]
    if not rows:
        raise ValueError("文件为空")
    header = ["" if h is None else str(h).strip() for h in rows[0]]
    return header, rows[1:]


def _cell(v: Any) -> Any:
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


def _number(v: Any, mult: int) -> Any:
    if v is None or mult == 1 or isinstance(v, bool):
        return v
    try:
        return str((Decimal(str(v)) * mult).quantize(Decimal("0.01")))
    except InvalidOperation:
        return v


def _date(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, str):
        m = re.match(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$", v)
        if m:
            return f"{int(m[1]):04d}-{int(m[2]):02d}-{int(m[3]):02d}"
    return v


def _bool(v: Any) -> Any:
    if isinstance(v, str):
        low = v.lower()
        if low in ("是", "有", "true", "y", "yes", "1"):
            return True
        if low in ("否", "无", "false", "n", "no", "0"):
            return False
    return v


class RowError(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


@dataclass
class Header:
    """A file's header read against a vocabulary: column index → (field, multiplier), field → the header as
    written (for error messages), and the headers no field answers to (ignored, named in the job's detail)."""

    cols: dict[int, tuple[str, int]]
    names: dict[str, str]
    unknown: list[str]

    def missing(self, required: list[tuple[str, str]]) -> list[str]:
        """The required (header, field) pairs' headers that the file lacks."""
        return [h for h, f in required if f not in self.names]


def map_header(header: list[str], vocabulary: dict[str, str]) -> Header:
    out = Header({}, {}, [])
    for i, h in enumerate(header):
        norm, mult = normalise_header(h)
        field = vocabulary.get(norm) or vocabulary.get(h)
        if field:
            out.cols[i] = (field, mult)
            out.names[field] = h
        elif h:
            out.unknown.append(h)
    return out


REQUIRED_ENTERPRISE = [
    ("统一社会信用代码", "uscc"), ("企业名称", "name"), ("所属区划", "region_code"), ("行业代码", "industry_code"),
]
REQUIRED_INDICATORS = [("统一社会信用代码", "uscc"), ("年度", "year")]


def template_headers(kind: str) -> list[str]:
    """The headers of an import kind's template (each one the importer reads as its field)."""
    if kind == "enterprises":
        return list(TEMPLATE_ENTERPRISE)
    out = [h for h, _ in REQUIRED_INDICATORS]
    for name, f in IndicatorSet.model_fields.items():
        desc = (f.description or "").split(" ")[0]
        out.append(desc if desc and INDICATOR_HEADERS.get(normalise_header(desc)[0]) == name else name)
    return out


TEMPLATE_ENTERPRISE = (
    "统一社会信用代码", "企业名称", "所属区划", "行业代码", "成立日期", "企业规模", "从业人员", "营业收入(元)",
    "联络员姓名", "联络员手机", "联络员邮箱", "战略性新兴产业类别", "地方重点产业", "六基领域",
)


def row_values(row: list[Any], cols: dict[int, tuple[str, int]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (field, mult) in cols.items():
        v = _cell(row[i]) if i < len(row) else None
        if v is not None:
            out[field] = _number(v, mult)
    return out


def _pydantic_error(exc: ValidationError, names: dict[str, str], prefix: tuple[str, ...] = ()) -> RowError:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ())]
    field = ".".join(loc)
    column = names.get(field) or (names.get(loc[0]) if loc else None) or field
    return RowError(column, zh_message(err))


def parse_enterprise(values: dict[str, Any], names: dict[str, str], regions: RegionIndex) -> EnterpriseIn:
    nested: dict[str, Any] = {}
    for k, v in values.items():
        if "." in k:
            top, sub = k.split(".", 1)
            nested.setdefault(top, {})[sub] = v
        else:
            nested[k] = v
    if "uscc" in nested:
        nested["uscc"] = str(nested["uscc"]).upper()
    if rc := nested.get("region_code"):
        rc = str(rc)
        if not rc.isdigit():
            matches = [c for c, r in regions.regions.items() if r.name == rc and r.status == "active"]
            if len(matches) != 1:
                raise RowError(names.get("region_code", "所属区划"), f"区划“{rc}”无法识别")
            rc = matches[0]
        nested["region_code"] = rc
    if "industry_code" in nested:
        nested["industry_code"] = str(nested["industry_code"])
    if "founded_on" in nested:
        nested["founded_on"] = _date(nested["founded_on"])
    if "scale" in nested:
        nested["scale"] = SCALE_BY_ZH.get(str(nested["scale"]), nested["scale"])
    if "liaison" in nested and "mobile" in nested["liaison"]:
        nested["liaison"]["mobile"] = str(nested["liaison"]["mobile"])
    focus = nested.get("focus")
    if focus and "foundations" in focus:
        parts = re.split(r"[、,,;;\s]+", str(focus["foundations"]))
        focus["foundations"] = [FOUNDATION_BY_ZH.get(p, p) for p in parts if p]
    try:
        return EnterpriseIn.model_validate(nested)
    except ValidationError as exc:
        raise _pydantic_error(exc, names) from exc


def parse_indicators(values: dict[str, Any], names: dict[str, str]) -> tuple[str, int, IndicatorSet]:
    uscc = str(values.pop("uscc", "") or "").upper()
    if not uscc:
        raise RowError(names.get("uscc", "统一社会信用代码"), "缺少统一社会信用代码")
    year_raw = values.pop("year", None)
    try:
        year = int(str(year_raw))
    except ValueError as exc:
        raise RowError(names.get("year", "年度"), "年度须为整数") from exc
    fields = IndicatorSet.model_fields
    clean: dict[str, Any] = {}
    for k, v in values.items():
        ann = repr(fields[k].annotation)
        if "bool" in ann and "Decimal" not in ann:
            v = _bool(v)
        elif k in ("sci_awards", "honours", "local_indicators") and isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError as exc:
                raise RowError(names.get(k, k), "须为 JSON") from exc
        elif k in MONEY_FIELDS and isinstance(v, float):
            v = str(Decimal(repr(v)).quantize(Decimal("0.01")))
        elif isinstance(v, float) and v.is_integer():
            v = int(v)
        clean[k] = v
    try:
        ind = IndicatorSet.model_validate(clean)
    except ValidationError as exc:
        raise _pydantic_error(exc, names) from exc
    if err := local_indicators_error(ind.local_indicators):
        raise RowError(names.get("local_indicators", "local_indicators"), err)
    errs = consistency_errors(ind)
    if errs:
        f, msg = errs[0]
        raise RowError(names.get(f, f), msg)
    return uscc, year, ind


# ---------------------------------------------------------------- processing


async def _progress(factory: async_sessionmaker[AsyncSession], job: ImportJob, **values: Any) -> None:
    async with factory() as s, s.begin():
        await repo.update_attempt(s, job.id, job.attempts, **values)


def _chunks(n: int) -> Iterator[tuple[int, int]]:
    for i in range(0, n, CHUNK):
        yield i, min(n, i + CHUNK)


# who runs a job (informational: the lease, not this name, decides whether the worker is alive)
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"


def _engine(factory: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    bind = factory.kw["bind"]
    assert isinstance(bind, AsyncEngine)
    return bind


async def claim_job(factory: async_sessionmaker[AsyncSession]) -> tuple[ImportJob, AsyncConnection] | None:
    """The oldest queued job, now ``running`` under this worker's lease (taken before the claim commits, so a
    recovery never sees the job running without it)."""
    lease: AsyncConnection | None = None
    try:
        async with factory() as s, s.begin():
            job = await repo.next_queued(s)
            if job is None:
                return None
            lease = await repo.take_lease(_engine(factory), job.id)
            if lease is None:  # the previous attempt's session is still ending
                return None
            job.status = "running"
            job.started_at = repo.now()
            job.attempts += 1
            job.worker = INSTANCE
    except BaseException:
        if lease is not None:
            await repo.drop_lease(lease)
        raise
    assert lease is not None
    return job, lease


async def run_job(factory: async_sessionmaker[AsyncSession], job: ImportJob) -> None:
    principal = Principal.model_validate(job.principal)
    try:
        header, rows = read_table(job.content or b"", job.filename)
    except ValueError as exc:
        await _progress(factory, job, status="failed", detail=str(exc), finished_at=datetime.now(UTC))
        return
    await _progress(factory, job, rows_total=len(rows))
    enterprises = job.kind == "enterprises"
    head = map_header(header, ENTERPRISE_HEADERS if enterprises else INDICATOR_HEADERS)
    ignored = f";未识别的列已忽略: {'、'.join(head.unknown)}" if head.unknown else ""
    if missing := head.missing(REQUIRED_ENTERPRISE if enterprises else REQUIRED_INDICATORS):
        await _progress(
            factory,
            job,
            status="failed" if job.mode == "all_or_nothing" else "done",
            errors=[{"row": 1, "column": m, "reason": "缺少必需的列"} for m in missing],
            rows_done=len(rows),
            rows_imported=0,
            detail=f"文件缺少必需的列: {'、'.join(missing)},未导入任何数据{ignored}",
            finished_at=datetime.now(UTC),
        )
        return
    valid_ents: list[dict[str, Any]] = []
    valid_inds: list[ind_cases.IndicatorReport] = []
    if enterprises:
        valid_ents, errors = await _validate_enterprises(factory, job, principal, head, rows)
    else:
        valid_inds, errors = await _validate_indicators(factory, job, principal, head, rows)
    imported = len(valid_ents) + len(valid_inds)
    if errors and job.mode == "all_or_nothing":
        await _progress(
            factory,
            job,
            status="failed",
            errors=errors[:MAX_ERRORS],
            rows_done=len(rows),
            rows_imported=0,
            detail=f"{len(errors)} 行有错误,按“全部成功或全部不导入”模式未导入任何数据{ignored}",
            finished_at=datetime.now(UTC),
        )
        return
    async with factory() as s, s.begin():
        # the job row first (locked, fenced on this attempt), then its rows: one commit, or none of it
        if not await repo.update_attempt(
            s,
            job.id,
            job.attempts,
            status="done",
            errors=errors[:MAX_ERRORS],
            rows_done=len(rows),
            rows_imported=imported,
            detail=f"导入 {imported} 行,{len(errors)} 行有错误{ignored}",
            finished_at=datetime.now(UTC),
            content=None,
        ):
            log.warning("import job %s attempt %d no longer holds the job; its rows are not written", job.id,
                        job.attempts)
            return
        if enterprises:
            await ent_cases.insert_enterprises(s, principal, valid_ents)
        else:
            await ind_cases.report_indicators(s, principal, principal.sub, valid_inds)


async def _validate_enterprises(
    factory: async_sessionmaker[AsyncSession],
    job: ImportJob,
    principal: Principal,
    head: Header,
    rows: list[list[Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cols, names = head.cols, head.names
    errors: list[dict[str, Any]] = []
    async with factory() as s, s.begin():
        regions = await region_index(s)
    valid: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for start, end in _chunks(len(rows)):
        candidates: list[tuple[int, dict[str, Any]]] = []
        for i in range(start, end):
            line = i + 2  # header is line 1
            try:
                data = parse_enterprise(row_values(rows[i], cols), names, regions)
                try:
                    row, _warnings = ent_cases.normalise_new(data, principal, regions)
                except Problem as p:
                    field = (p.errors or [{"field": ""}])[0]["field"]
                    raise RowError(names.get(field, field), (p.errors or [{"message": p.detail}])[0]["message"]) from p
                if row["uscc"] in seen:
                    raise RowError(names["uscc"], f"与第{seen[row['uscc']]}行重复")
                seen[row["uscc"]] = line
                candidates.append((line, row))
            except RowError as e:
                errors.append({"row": line, "column": e.column, "reason": e.reason})
        async with factory() as s, s.begin():
            exists = await ents.existing_usccs(s, [r["uscc"] for _, r in candidates])
        for line, row in candidates:
            if row["uscc"] in exists:
                errors.append({"row": line, "column": names["uscc"], "reason": "统一社会信用代码已登记"})
            else:
                valid.append(row)
        await _progress(factory, job, rows_done=end, errors=errors[:MAX_ERRORS])
    return valid, errors


async def _validate_indicators(
    factory: async_sessionmaker[AsyncSession],
    job: ImportJob,
    principal: Principal,
    head: Header,
    rows: list[list[Any]],
) -> tuple[list[ind_cases.IndicatorReport], list[dict[str, Any]]]:
    cols, names = head.cols, head.names
    source = f"agency:{principal.sub}" if principal.role == Role.AGENCY else SELF_REPORT
    max_year = datetime.now(UTC).year + 1
    errors: list[dict[str, Any]] = []
    valid: list[ind_cases.IndicatorReport] = []
    lines: list[int] = []
    for start, end in _chunks(len(rows)):
        parsed: list[tuple[int, str, int, IndicatorSet]] = []
        for i in range(start, end):
            line = i + 2
            try:
                uscc, year, ind = parse_indicators(row_values(rows[i], cols), names)
                if not 2000 <= year <= max_year:
                    raise RowError(names["year"], "年度超出范围")
                parsed.append((line, uscc, year, ind))
            except RowError as e:
                errors.append({"row": line, "column": e.column, "reason": e.reason})
        async with factory() as s, s.begin():
            found = await ents.visible_by_uscc(s, principal, [p[1] for p in parsed])
        for line, uscc, year, ind in parsed:
            ent = found.get(uscc)
            if ent is None:
                errors.append({"row": line, "column": names["uscc"], "reason": "企业未登记或不在您的管辖范围内"})
            elif ent.status != "active":
                errors.append({"row": line, "column": names["uscc"], "reason": "企业已注销"})
            else:
                valid.append(ind_cases.IndicatorReport(ent, year, source, stored_values(ind)))
                lines.append(line)
        await _progress(factory, job, rows_done=end, errors=errors[:MAX_ERRORS])
    # each row merged with what is already stored (and the rows before it): the effective set must stay consistent
    async with factory() as s, s.begin():
        conflicts = await ind_cases.merged_conflicts(s, valid)
    if conflicts:
        for i, errs in conflicts.items():
            f, msg = errs[0]
            errors.append({"row": lines[i], "column": names.get(f, f), "reason": msg})
        errors.sort(key=lambda e: int(e["row"]))
        valid = [r for i, r in enumerate(valid) if i not in conflicts]
        await _progress(factory, job, errors=errors[:MAX_ERRORS])
    return valid, errors


# ---------------------------------------------------------------- use cases of the API

MAX_BYTES = 50 * 1024 * 1024


async def create_job(
    session: AsyncSession,
    principal: Principal,
    kind: str,
    mode: str,
    filename: str | None,
    content: bytes,
    supersedes: uuid.UUID | None = None,
) -> ImportJob:
    """Queue an import job (the worker wakes when the transaction is committed and ``wake_event`` set).
    ``supersedes``: an earlier unfinished job of the caller's that this one replaces (never run again; a queued
    one is superseded at once, a running one cannot write its rows and is marked when its worker is gone)."""
    officials = principal.is_official or principal.role == Role.ADMIN
    if kind == "enterprises" and not officials:
        raise Problem(403, "只有主管部门可以批量登记企业")
    if kind == "indicators" and not (officials or principal.role in (Role.AGENCY, Role.ENTERPRISE)):
        raise Problem(403, "当前角色无权导入指标")
    if len(content) > MAX_BYTES:
        raise Problem(413, "文件过大(上限 50 MB)")
    if not content:
        raise Problem(422, "文件为空", errors=[{"field": "file", "message": "文件为空"}])
    job = ImportJob(
        id=uuid.uuid4(),
        kind=kind,
        mode=mode,
        status="queued",
        filename=filename,
        content=content,
        content_sha256=hashlib.sha256(content).hexdigest(),
        attempts=0,
        principal=principal.model_dump(mode="json"),
        errors=[],
        rows_total=0,
        rows_done=0,
        rows_imported=0,
    )
    session.add(job)
    if supersedes is not None:
        await _supersede(session, principal, supersedes, job)
    await record_audit(
        session,
        backbone,
        principal,
        "import.create",
        "import_job",
        str(job.id),
        after={"kind": kind, "mode": mode, "filename": filename, "bytes": len(content),
               "supersedes": str(supersedes) if supersedes else None},
    )
    await session.flush()
    await session.refresh(job)
    return job


async def _supersede(session: AsyncSession, principal: Principal, old_id: uuid.UUID, new: ImportJob) -> None:
    old = await repo.for_update(session, old_id)
    refusal: tuple[int, str] | None = None
    if old is None or old.principal.get("sub") != principal.sub or old.kind != new.kind:
        refusal = 404, "要取代的导入作业不存在"
    elif old.status == "done" or old.superseded_by is not None:
        refusal = 409, "该作业已完成,不能被取代" if old.status == "done" else "该作业已被取代"
    if refusal is not None or old is None:
        status, reason = refusal or (404, "")
        raise Problem(status, reason, errors=[{"field": "supersedes", "message": reason}])
    before = {"status": old.status, "superseded_by": None}
    old.superseded_by = new.id
    if old.status == "queued":
        old.status, old.content, old.finished_at = "superseded", None, repo.now()
        old.detail = f"已由导入作业 {new.id} 取代,不再执行"
    await record_audit(session, backbone, principal, "import.superseded", "import_job", str(old.id), before=before,
                       after={"status": old.status, "superseded_by": str(new.id)})


async def get_job(session: AsyncSession, principal: Principal, job_id: uuid.UUID) -> ImportJob:
    job = await session.get(ImportJob, job_id)
    if job is None or (principal.role != Role.ADMIN and job.principal.get("sub") != principal.sub):
        raise not_found("导入作业")
    return job


async def process_next(factory: async_sessionmaker[AsyncSession]) -> bool:
    claimed = await claim_job(factory)
    if claimed is None:
        return False
    job, lease = claimed
    try:
        await run_job(factory, job)
    except Exception as exc:
        log.exception("import job %s failed", job.id)
        await _progress(
            factory,
            job,
            status="failed",
            detail=f"处理失败: {type(exc).__name__}: {exc}",
            finished_at=datetime.now(UTC),
        )
    finally:
        # (also when the worker is cancelled mid-job: the job stays running, its lease free, and the next
        # start takes it up again)
        await repo.drop_lease(lease)
    return True


async def recover_interrupted(factory: async_sessionmaker[AsyncSession]) -> dict[str, list[uuid.UUID]]:
    """Jobs left ``running`` by a worker that is gone (their lease is free): queued again at once, or
    ``superseded`` (never rerun) when the uploader resubmitted the same file after them or a job names them
    superseded. Each outcome audited. Jobs whose worker lives (lease held) are left alone."""
    out: dict[str, list[uuid.UUID]] = {"requeued": [], "superseded": []}
    engine = _engine(factory)
    async with factory() as s, s.begin():
        for job in await repo.running_unlocked(s):
            lease = await repo.take_lease(engine, job.id)
            if lease is None:
                continue  # its worker is alive
            await repo.drop_lease(lease)  # (the row lock keeps claims away until this transaction ends)
            successor = job.superseded_by or await repo.resubmission_of(s, job)
            before = {"status": job.status, "attempts": job.attempts, "worker": job.worker}
            if successor is not None:
                job.status, job.superseded_by, job.content = "superseded", successor, None
                job.finished_at = repo.now()
                job.detail = f"执行中断;同一文件已由导入作业 {successor} 重新提交,本作业不再执行"
                out["superseded"].append(job.id)
                action = "import.superseded"
            else:
                job.status = "queued"
                job.detail = f"第 {job.attempts} 次执行中断(服务停止),已重新排队"
                out["requeued"].append(job.id)
                action = "import.requeue"
            await record_audit(s, backbone, None, action, "import_job", str(job.id), before=before,
                               after={"status": job.status, "superseded_by": str(successor) if successor else None})
    if out["requeued"] or out["superseded"]:
        log.info("interrupted import jobs: %d requeued, %d superseded", len(out["requeued"]),
                 len(out["superseded"]))
    return out


RECOVER_EVERY = 30.0  # seconds: an idle worker also takes up the jobs of another instance that died


async def import_worker(runtime: Any) -> None:
    """Service worker: recovers interrupted jobs at start, then processes queued ones until the service stops."""
    factory = runtime.session_factory
    loop = asyncio.get_running_loop()
    next_recovery = 0.0
    while not runtime.stopping.is_set():
        if loop.time() >= next_recovery:
            try:
                await recover_interrupted(factory)
            except Exception as exc:
                log.warning("could not recover interrupted import jobs: %s", exc)
            next_recovery = loop.time() + RECOVER_EVERY
        try:
            worked = await process_next(factory)
        except Exception as exc:
            log.warning("import worker error: %s", exc)
            worked = False
        if not worked:
            wake = wake_event()
            wake.clear()
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(runtime.stopping.wait())]
            await asyncio.wait(waiters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

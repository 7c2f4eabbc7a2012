"""Registry bulk import: rows/s for enterprise imports (XLSX and CSV) and an indicators import.

    .venv/bin/python bench/registry_import.py [--n 10000]

Starts its own embedded PostgreSQL (or uses ZJTX_DATABASE_URL), migrates the registry schema, generates
``n`` enterprise rows with Chinese headers (services.registry.demo), and runs the same job code the service's
import worker runs (parse → validate every row → batched inserts with outbox events and audit rows).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text

from services.registry.app import imports
from services.registry.db.models import Enterprise, ImportJob
from services.registry.demo import generate_enterprise_rows, to_csv, to_xlsx
from shared.db import create_engine, make_session_factory
from shared.infra import start_postgres
from shared.migrations import upgrade

PRINCIPAL = {"sub": "bench", "role": "province_official", "region": "330000", "uscc": None}


async def run_import(url: str, content: bytes, filename: str, kind: str) -> tuple[float, int, int]:
    engine = create_engine(url, pool_size=4)
    factory = make_session_factory(engine)
    try:
        async with factory() as s, s.begin():
            job = ImportJob(
                id=uuid.uuid4(),
                kind=kind,
                mode="accept_valid",
                status="queued",
                filename=filename,
                content=content,
                principal=PRINCIPAL,
                errors=[],
                rows_total=0,
                rows_done=0,
                rows_imported=0,
            )
            s.add(job)
        started = time.perf_counter()
        claimed = await imports.claim_job(factory)
        assert claimed is not None
        await imports.run_job(factory, claimed)
        elapsed = time.perf_counter() - started
        async with factory() as s:
            done = await s.get(ImportJob, job.id)
            assert done is not None
            return elapsed, done.rows_imported, len(done.errors)
    finally:
        await engine.dispose()


async def reset(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "TRUNCATE registry.enterprises, registry.outbox, registry.audit_log, "
                "registry.indicator_revisions, registry.import_jobs"
            )
        )
    await engine.dispose()


async def count(url: str) -> int:
    engine = create_engine(url, pool_size=1)
    async with make_session_factory(engine)() as s:
        n = (await s.execute(select(func.count()).select_from(Enterprise))).scalar_one()
    await engine.dispose()
    return int(n)


async def main(n: int) -> None:
    url = os.environ.get("ZJTX_DATABASE_URL")
    server = None
    if not url:
        server, url = start_postgres(Path(tempfile.mkdtemp(prefix="zjtx-bench-")) / "pg", database="bench")
    try:
        await asyncio.to_thread(upgrade, "registry", url)
        t = time.perf_counter()
        rows = generate_enterprise_rows(n)
        xlsx, csv_bytes = to_xlsx(rows), to_csv(rows)
        print(f"generated {n} rows in {time.perf_counter() - t:.1f}s (xlsx {len(xlsx) / 1e6:.1f} MB)")
        for label, content, name in (("xlsx", xlsx, "bench.xlsx"), ("csv", csv_bytes, "bench.csv")):
            await reset(url)
            elapsed, imported, errors = await run_import(url, content, name, "enterprises")
            assert imported == n and errors == 0 and await count(url) == n, (imported, errors)
            print(f"enterprises {label}: {n} rows in {elapsed:.2f}s = {n / elapsed:,.0f} rows/s")
        ind = [["统一社会信用代码", "年度", "营业收入", "主营业务收入", "研发费用", "职工总数", "研发人员"]]
        ind += [[r[0], 2025, "30000000", "28000000", "1200000", 100, 15] for r in rows[1:]]
        elapsed, imported, errors = await run_import(url, to_csv(ind), "ind.csv", "indicators")
        assert imported == n and errors == 0
        print(f"indicators csv: {n} rows in {elapsed:.2f}s = {n / elapsed:,.0f} rows/s")
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().n))

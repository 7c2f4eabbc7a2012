"""Issue 16 item 10: the evaluation service's worker processes (forkserver, resource tracker, workers) end with
the service, whether it is SIGKILLed or stopped cleanly; and they end by themselves when idle (issue 17 item 3)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from shared.infra import alive, cmdline, descendants, free_port
from tests.harness import token

REPO = Path(__file__).resolve().parents[2]


def _wait(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


RULESET = "MIIT-2022-63-innovative"  # national: covers the seeded 余杭 enterprise


def _seed_enterprise() -> str:
    """One enterprise with a report in the evaluation service's tables, so a re-evaluation has work."""
    import asyncpg

    from shared.db import asyncpg_dsn

    uscc = f"9133011{uuid.uuid4().hex[:11].upper()}"

    async def seed() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(os.environ["ZJTX_DATABASE_URL"]))
        try:
            await conn.execute("INSERT INTO evaluation.enterprises (uscc, name, region_code, status, version) "
                               "VALUES ($1, '进程测试企业', '330110', 'active', 1)", uscc)
            await conn.execute(
                "INSERT INTO evaluation.indicator_reports (uscc, year, revision, region_code, indicators) "
                "VALUES ($1, 2025, 1, '330110', $2::jsonb)",
                uscc, json.dumps({"operating_revenue": "50000000.00", "rd_expense": "2000000.00", "employees": 80}))
        finally:
            await conn.close()

    asyncio.run(seed())
    return uscc


def _reevaluate(port: int) -> None:
    """Start a re-evaluation job through the API (its worker processes start for it) and let it finish."""
    headers = {"Authorization": f"Bearer {token('province_official', '330000', sub='province-1')}",
               "Content-Type": "application/json"}

    def post() -> bool:  # the rule sets are stored by a worker just after start
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/rulesets/{RULESET}/reevaluate",
                                     data=b"{}", headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return bool(resp.status == 202)
        except urllib.error.HTTPError:
            return False

    _wait(post, 60, "the re-evaluation to be accepted")


def _forget_unfinished_jobs() -> None:
    """A job the previous test's SIGKILL interrupted would be resumed by the next start, whose workers would then
    exist before this test gives any work (and one unfinished job per rule set would refuse ours: 409)."""
    import asyncpg

    from shared.db import asyncpg_dsn

    async def forget() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(os.environ["ZJTX_DATABASE_URL"]))
        try:
            await conn.execute("UPDATE evaluation.jobs SET status = 'failed' WHERE status IN ('queued', 'running')")
        finally:
            await conn.close()

    asyncio.run(forget())


def _start(extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    _forget_unfinished_jobs()
    port = free_port()
    env = dict(os.environ) | {
        "ZJTX_EVAL_PRESTART_WORKERS": "false",  # the workers start for the re-evaluation (the default)
        "ZJTX_EVAL_REEVALUATE_WORKERS": "2",
        "ZJTX_LOG_LEVEL": "WARNING",
    } | extra
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "serve", "evaluation", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return proc, port


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _workers_up(proc: subprocess.Popen[bytes], port: int) -> list[int]:
    """Wait until the service answers, start a re-evaluation and wait for its forkserver, resource tracker and
    worker (started on demand: one per chunk in flight, at most ``REEVALUATE_WORKERS``)."""
    _wait(lambda: proc.poll() is None and _healthy(port), 90, "the evaluation service to answer /healthz")
    assert not descendants(proc.pid), "no worker process before there is work"
    _seed_enterprise()
    _reevaluate(port)
    _wait(lambda: len(descendants(proc.pid)) >= 3, 60, "forkserver, resource tracker and a worker")
    pids = descendants(proc.pid)
    cmdlines = " | ".join(cmdline(p) for p in pids)
    assert "forkserver" in cmdlines and "resource_tracker" in cmdlines, cmdlines
    return pids


def _assert_all_gone(pids: list[int], how: str) -> None:
    try:
        _wait(lambda: not any(alive(p) for p in pids), 8, f"worker processes to end after {how}")
    except AssertionError:
        left = [f"{p}: {cmdline(p)}" for p in pids if alive(p)]
        for p in pids:  # leave nothing behind for the next test
            if alive(p):
                os.kill(p, signal.SIGKILL)
        raise AssertionError(f"processes left after {how}: {left}") from None


@pytest.mark.e2e
def test_sigkilled_service_leaves_no_worker_processes() -> None:
    proc, port = _start({})
    try:
        pids = _workers_up(proc, port)
        proc.kill()
        proc.wait(10)
        _assert_all_gone(pids, "SIGKILL of the service")
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.e2e
def test_clean_stop_leaves_no_worker_processes() -> None:
    proc, port = _start({})
    try:
        pids = _workers_up(proc, port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) is not None
        _assert_all_gone(pids, "SIGTERM (clean stop)")
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.e2e
def test_idle_workers_end_while_the_service_runs() -> None:
    proc, port = _start({"ZJTX_EVAL_WORKERS_IDLE_SECONDS": "2"})
    try:
        pids = _workers_up(proc, port)
        _assert_all_gone(pids, "2 s without work")
        assert proc.poll() is None and _healthy(port)
    finally:
        proc.terminate()
        proc.wait(30)

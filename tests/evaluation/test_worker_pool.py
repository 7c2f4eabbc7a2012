"""The re-evaluation worker processes: started with the service, kept across jobs, one rule set per content."""

from __future__ import annotations

from datetime import date

import pytest

from services.evaluation.app import reevaluation as jobs
from services.evaluation.domain.loader import load_all
from tests.harness import running_service, wait_for


async def test_service_starts_and_stops_its_reevaluation_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZJTX_EVAL_PRESTART_WORKERS", "true")
    jobs.shutdown_workers()
    async with running_service("evaluation", consumer=True):

        async def started() -> bool:
            pool = jobs._POOL.current
            return pool is not None and len(pool._processes or {}) == 1  # the configured one, already running

        await wait_for(started, timeout=30, what="worker process started with the service")
    assert jobs._POOL.current is None


def test_a_worker_switches_rule_set_by_content() -> None:
    """A kept worker meets several jobs' rule sets: each chunk names its rule set by the hash of its content,
    so a changed definition under the same id and version is compiled anew, never mixed up."""
    by_id = {r.id: r for r in load_all()}
    inno, srdi = by_id["MIIT-2022-63-innovative"], by_id["MIIT-2022-63-srdi"]
    chunk = [("91330110MA0000000X", "330110", 2025, None, None, True,
              '{"operating_revenue": "50000000.00", "rd_expense": "2000000.00"}', [])]
    as_of = date(2026, 3, 31)
    a = jobs._evaluate(chunk, as_of, ("a", inno.model_dump(mode="json")))
    assert a[0][3]["ruleset_id"] == inno.id
    b = jobs._evaluate(chunk, as_of, ("b", srdi.model_dump(mode="json")))
    assert b[0][3]["ruleset_id"] == srdi.id and b[0][5] != a[0][5]
    assert jobs._evaluate(chunk, as_of, ("a", inno.model_dump(mode="json"))) == a

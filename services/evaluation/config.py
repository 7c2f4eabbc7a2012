"""Evaluation-specific configuration (``ZJTX_EVAL_*`` environment variables)."""

from __future__ import annotations

import os
from contextvars import ContextVar
from datetime import date
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class EvaluationConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZJTX_EVAL_", extra="ignore")

    as_of: date | None = None  # decision date for event-driven evaluation; None = today
    publicity_working_days: int = 5  # 公示期(工作日)
    recheck_lead_days: int = 90  # recheck.due this many days before valid_to
    expiry_interval_seconds: float = 60.0
    revocation_grounds: tuple[str, ...] = ("data_fraud", "serious_dishonesty", "major_accident", "other")
    reevaluate_batch: int = 1000
    # evaluation.completed carries a result's gaps only when it is not eligible and at most this many of its
    # conditions are unmet (the events stay small: a re-evaluation publishes one per enterprise)
    gap_event_max_unmet: int = 3
    # evaluation processes for re-evaluation jobs (0: in the service process); started by a clean forkserver
    reevaluate_workers: int = 1
    # start them with the service (a job then does not wait ~1 s for a process to start and import the engine);
    # off by default: an idle service should not hold a worker (~80 MiB), its forkserver and resource tracker
    prestart_workers: bool = False
    # worker processes (re-evaluation, simulation) stop after this long without work; 0 keeps them
    workers_idle_seconds: float = 30.0
    # the per-province mapping tier + title level → deciding rule set (``<province>.yaml`` files)
    title_rules_dir: Path = Path(__file__).resolve().parent / "rulesets" / "title_rules"

    def decision_date(self) -> date:
        """The current task's own decision date when one is set (:data:`TASK_DECISION_DATE`), else the dev clock
        (``PUT /api/v1/dev/clock``), else ``ZJTX_EVAL_AS_OF``, else today."""
        return TASK_DECISION_DATE.get() or DEV_CLOCK.as_of or self.as_of or date.today()


class DevClock:
    """The decision date moved by an admin in a dev or test stack (``api/dev.py``; refused when ZJTX_ENV=prod).

    Held by the evaluation process (re-evaluation workers are handed their date), so a restart resets it."""

    as_of: date | None = None


DEV_CLOCK = DevClock()

# A decision date for the current task only: the demo's history takes several applications through the workflow at
# once, each on its own historical day (a process-wide setting would mix them up).
TASK_DECISION_DATE: ContextVar[date | None] = ContextVar("zjtx_eval_task_decision_date", default=None)


_CONFIGS: dict[tuple[tuple[str, str], ...], EvaluationConfig] = {}


def get_config() -> EvaluationConfig:
    """The configuration from the ``ZJTX_EVAL_*`` environment as it is now (a test or the demo's history may change
    it), built once per distinct environment: building settings costs more than an evaluation's queries."""
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("ZJTX_EVAL_")))
    config = _CONFIGS.get(key)
    if config is None:
        if len(_CONFIGS) > 64:
            _CONFIGS.clear()
        config = _CONFIGS[key] = EvaluationConfig()
    return config

"""Demo data of the evaluation service: the shipped rule sets, stored versioned (idempotent).

Demo enterprises and their indicators arrive through registry's events."""

from __future__ import annotations

from shared.db import create_engine, make_session_factory
from shared.settings import Settings


async def load_demo(settings: Settings, size: int) -> None:
    from services.evaluation.db.ruleset_store import sync_rulesets

    engine = create_engine(settings.database_url, pool_size=2)
    try:
        await sync_rulesets(make_session_factory(engine))
    finally:
        await engine.dispose()

"""Worker: migrated-in titles waiting for their year of operation here are rewarded on the day it completes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from services.finance.app.entitlements import apply_due_deferrals

log = logging.getLogger(__name__)
POLL_SECONDS = 3600.0


async def deferral_worker(runtime: Any) -> None:
    """Long-running worker started with the service (``spec.workers``): hourly, apply what is due today."""
    while not runtime.stopping.is_set():
        try:
            while True:
                async with runtime.session_factory() as session, session.begin():
                    if not await apply_due_deferrals(session, datetime.now(UTC).date()):
                        break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deferral worker error")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.stopping.wait(), timeout=POLL_SECONDS)

"""Monitor settings (environment, ``ZJTX_MONITOR_`` prefix)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class MonitorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZJTX_MONITOR_", extra="ignore")

    # Archive partitions (months) wholly older than this many days are dropped; None keeps everything.
    retention_days: int | None = None
    # Longest long-poll a feed request may ask for (seconds).
    max_wait_seconds: int = 30


@lru_cache
def monitor_settings() -> MonitorSettings:
    return MonitorSettings()

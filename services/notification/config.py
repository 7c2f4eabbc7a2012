"""Notification settings of its own (environment ``ZJTX_GAP_ADVICE_*``)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.notification.domain.gap_advice import AdviceConfig


class GapAdviceSettings(BaseSettings):
    """``ZJTX_GAP_ADVICE_MAX_YUAN_GAP`` (default 1000000) and ``ZJTX_GAP_ADVICE_MAX_UNMET`` (unset: off)."""

    model_config = SettingsConfigDict(env_prefix="ZJTX_GAP_ADVICE_")

    max_yuan_gap: Decimal = Decimal("1000000")
    max_unmet: int | None = None


@lru_cache
def gap_advice_config() -> AdviceConfig:
    s = GapAdviceSettings()
    return AdviceConfig(max_yuan_gap=s.max_yuan_gap, max_unmet=s.max_unmet)

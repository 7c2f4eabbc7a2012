"""Fund channels per jurisdiction, from ``seeds/funds.yaml`` (read once, on first use)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

FUNDS_FILE = Path(__file__).resolve().parent.parent / "seeds" / "funds.yaml"


@lru_cache
def _config(path: Path = FUNDS_FILE) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    default = tuple(str(f) for f in data.get("default", ()))
    by_code = {str(code): tuple(str(f) for f in funds) for code, funds in (data.get("jurisdictions") or {}).items()}
    return default, by_code


def allowed(jurisdiction: str) -> tuple[str, ...]:
    """The fund channels a jurisdiction may budget."""
    default, by_code = _config()
    return by_code.get(jurisdiction, default)

"""Loads the GB/T 2260 snapshot (active codes and programme zones) into a :class:`RegionTree`.

The snapshot is reference data shipped with the registry (``data/regions_gbt2260.csv``); the monitor reads the
same file (``ZJTX_MONITOR_REGIONS_FILE`` overrides) rather than keep a second copy."""

from __future__ import annotations

import csv
import os
from functools import lru_cache
from pathlib import Path

from services.monitor.domain.regions import RegionNode, RegionTree, level_of

_SERVICES = Path(__file__).resolve().parents[2]


def regions_file() -> Path:
    given = os.environ.get("ZJTX_MONITOR_REGIONS_FILE")
    if given:
        return Path(given)
    found = sorted(_SERVICES.parent.glob("shared/data/regions_gbt2260.csv")) or sorted(
        _SERVICES.glob("*/data/regions_gbt2260.csv"))
    if not found:
        raise FileNotFoundError("regions_gbt2260.csv not found; set ZJTX_MONITOR_REGIONS_FILE")
    return found[0]


@lru_cache
def region_tree() -> RegionTree:
    with regions_file().open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    nodes = {
        r["code"]: RegionNode(code=r["code"], name=r["name"], level=r["level"] or level_of(r["code"]),
                              parent=r["parent_code"] or None)
        for r in rows if r["status"] == "active"
    }
    return RegionTree(nodes)

"""The dated GB/T 2260 snapshot, shared by every service: ``shared/data/regions_gbt2260.csv`` (``shared.regions``)."""

from __future__ import annotations

from shared.regions import DATA_FILE, SNAPSHOT, RegionRow, read_regions

__all__ = ["DATA_FILE", "SNAPSHOT", "RegionRow", "read_regions"]

"""The embedded PostgreSQL takes server settings (the dev stack sizes its shared buffers, shared/devstack.py)."""

from __future__ import annotations

from pathlib import Path

from shared.devstack import PG_SETTINGS
from shared.infra import start_postgres


def test_settings_apply_when_the_server_starts_and_again_on_restart(tmp_path: Path) -> None:
    server, _ = start_postgres(tmp_path / "pg", database="zjtx", settings=PG_SETTINGS)
    try:
        assert PG_SETTINGS["shared_buffers"] in server.psql("SHOW shared_buffers;")
    finally:
        server.cleanup()
    server, _ = start_postgres(tmp_path / "pg", database="zjtx", settings={"shared_buffers": "24MB"})
    try:
        assert "24MB" in server.psql("SHOW shared_buffers;")
        assert (tmp_path / "pg" / "postgresql.conf").read_text().count("zjtx.conf") == 1
    finally:
        server.cleanup()

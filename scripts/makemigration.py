"""Autogenerate the next alembic revision of one service against a throwaway embedded PostgreSQL.

    python scripts/makemigration.py registry "add enterprises"
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from shared.infra import start_postgres
from shared.migrations import alembic_config


def main() -> int:
    service, message = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="zjtx-mig-") as tmp:
        server, url = start_postgres(Path(tmp) / "pg")
        try:
            cfg = alembic_config(service, url)
            command.upgrade(cfg, "head")
            command.revision(cfg, message=message, autogenerate=True)
        finally:
            server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

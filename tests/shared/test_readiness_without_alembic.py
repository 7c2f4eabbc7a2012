"""A running service checks its migrations without importing alembic (issue 17 item 3: ~7 MiB with mako and
pygments); the heads it reads from the version files are alembic's own. With JSON logs it never imports rich or
pygments (structlog's console renderer and httpx's command line would)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from alembic.script import ScriptDirectory

from shared.events.catalog import SERVICES
from shared.migrations import migrations_dir, script_heads


@pytest.mark.parametrize("service", SERVICES)
def test_heads_are_alembics(service: str) -> None:
    assert script_heads(service) == tuple(sorted(ScriptDirectory(str(migrations_dir(service))).get_heads()))


def test_a_built_service_has_not_imported_alembic() -> None:
    code = (
        "import sys\n"
        "from services.registry.main import build_app\n"
        "build_app()\n"
        "from shared.migrations import script_heads\n"
        "script_heads('registry')\n"
        "print(sorted(m for m in ('alembic', 'mako', 'pygments') if m in sys.modules))\n"
    )
    env = {**os.environ, "ZJTX_LOG_JSON": "true"}  # as deployed (console logs may pull in rich)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "[]", out


def test_json_logging_services_do_not_import_rich() -> None:
    code = (
        "import sys\n"
        "import shared.cli\n"
        "from services.finance.main import build_app\n"  # finance calls out with httpx
        "build_app()\n"
        "import httpx, structlog\n"
        "print(sorted(m for m in ('rich', 'pygments') if m in sys.modules))\n"
    )
    env = {**os.environ, "ZJTX_LOG_JSON": "true"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "[]", out

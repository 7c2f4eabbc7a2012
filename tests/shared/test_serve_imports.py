"""``zjtx serve`` of an HS256 service leaves cryptography out (PyJWT imports it only for RSA/EC: ~11 MiB of RSS
per service, issue 17 item 3) and still verifies its tokens; an RS256 service has it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = """
import sys
import uvicorn
uvicorn.run = lambda app, **kw: None  # serve everything but the server itself
import shared.cli
shared.cli.main(["serve", "registry", "--port", "1"])
from shared.services import descriptor, load_attribute
load_attribute(descriptor("registry").app)()
from shared.auth import decode_token, issue_token
from shared.settings import get_settings
settings = get_settings("registry")
if settings.jwt_algorithm == "HS256":
    token = issue_token(settings, role="county_official", region="330110")
    assert decode_token(settings, token).region == "330110"
print("cryptography" in sys.modules)
"""


@pytest.mark.parametrize(("algorithm", "imported"), [("HS256", "False"), ("RS256", "True")])
def test_cryptography_only_for_rs256(algorithm: str, imported: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZJTX_")} | {
        "ZJTX_ENV": "dev", "ZJTX_JWT_ALGORITHM": algorithm, "ZJTX_LOG_JSON": "true"}
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == imported

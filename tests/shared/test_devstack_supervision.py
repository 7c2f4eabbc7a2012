"""The dev stack's supervision: a service stopped on purpose stops the stack, a crashed one is restarted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.devstack import Stack


def _exited(code_or_signal: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code_or_signal])
    proc.wait(10)
    return proc


@pytest.mark.parametrize(
    "how", ["raise SystemExit(0)", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)",
            "import os, signal; os.kill(os.getpid(), signal.SIGINT)"],
)
def test_a_service_stopped_on_purpose_stops_the_stack(tmp_path: Path, how: str) -> None:
    """uvicorn drains on SIGTERM/SIGINT and then re-raises the signal: that is a deliberate stop, not a crash."""
    stack = Stack(tmp_path, 20000)
    stack.services["registry"] = _exited(how)
    assert stack.supervise_once() is False


def test_a_crashed_service_is_restarted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = Stack(tmp_path, 20000)
    restarted: list[str] = []
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    monkeypatch.setattr(stack, "_spawn_service", lambda name: restarted.append(name) or alive)
    try:
        stack.services["registry"] = _exited("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
        assert stack.supervise_once() is True and restarted == ["registry"]
        stack.services["registry"] = _exited("raise SystemExit(3)")
        assert stack.supervise_once() is True and restarted == ["registry", "registry"]
        assert stack.services["registry"] is alive
    finally:
        alive.kill()
        alive.wait()

"""End to end: the README's run command starts the whole stack as processes and stops it cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shared.events.catalog import SERVICES
from shared.infra import free_port, port_open

REPO = Path(__file__).resolve().parents[2]


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _pids(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


@pytest.mark.e2e
def test_run_starts_everything_and_stops_cleanly(tmp_path: Path) -> None:
    base = 20000 + (free_port() % 20000)
    while any(port_open(base + i) for i in (1, 2, 3, 4, 25, 90, 91)):
        base = 20000 + (free_port() % 20000)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("ZJTX_")
    } | {
        "ZJTX_HOME": str(tmp_path / "home"),
        "ZJTX_DEV_PORT_BASE": str(base),
        "ZJTX_DEV_KAFKA_PORT": str(free_port()),
        "ZJTX_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "run", "--demo-size", "30"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "is up in" in line:
                break
        output = "".join(lines)
        assert "is up in" in output, output[-3000:]
        for service in SERVICES:
            status, body = _get(f"http://127.0.0.1:{base + 1 + SERVICES.index(service)}/readyz")
            assert status == 200 and body["status"] == "ok", (service, body)
        tokens = re.findall(r"^\s+(eyJ[\w-]+\.[\w-]+\.[\w-]+)$", output, re.M)
        assert len(tokens) >= 5
        # The printed province token is accepted by a protected endpoint; a bogus one is refused.
        status, _ = _get(f"http://127.0.0.1:{base + 1}/api/v1/regions/330000", tokens[0])
        assert status == 200
        status, body = _get(f"http://127.0.0.1:{base + 1}/api/v1/regions/330000", "not-a-token")
        assert status == 401 and body["status"] == 401
        started = {
            name: _pids(pattern)
            for name, pattern in [
                *((s, f"serve {s} --port {base + 1 + SERVICES.index(s)}") for s in SERVICES),
                ("postgres", str(tmp_path / "home" / "pg")),
                ("tansu", f"127.0.0.1:{env['ZJTX_DEV_KAFKA_PORT']}"),
            ]
        }
        assert all(started.values()), started
        # The supervising process holds no application code (the demo load ran in a child that exited).
        rss_kib = int(next(row for row in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                           if row.startswith("VmRSS:")).split()[1])
        assert rss_kib < 80 * 1024, f"zjtx run holds {rss_kib // 1024} MiB"
        # A crashed service is restarted with a log line; the rest of the stack keeps running.
        victim = SERVICES[-1]
        os.kill(started[victim][0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if f"{victim} exited with -9; restarting" in line:
                break
        assert f"{victim} exited with -9; restarting" in "".join(lines), "".join(lines)[-2000:]
        port = base + SERVICES.index(victim) + 1
        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline and status != 200:
            try:
                status, _ = _get(f"http://127.0.0.1:{port}/readyz")
            except OSError:
                time.sleep(0.3)
        assert status == 200, f"{victim} not ready again after its restart"
        started[victim] = _pids(f"serve {victim} --port {port}")
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        lines.append(rest or "")
    output = "".join(lines)
    assert proc.returncode == 0, output[-3000:]
    assert "stopped" in output
    for port in (base + 1, base + 2, base + 3, base + 4):
        assert not port_open(port), f"port {port} still open after stop"
    left = {name: [p for p in pids if _alive(p)] for name, pids in started.items()}
    assert not any(left.values()), f"processes left behind: {left}"

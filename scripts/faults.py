"""``make faults``: a seeded chaos run over the whole system (issue 16, "a chaos run").

For each seed: an embedded PostgreSQL and a Tansu broker of its own (temp dir, free ports), migrations and topics,
the small demo data (policies, budgets, commissioners), the payment-gateway and SMS/SMTP stand-ins and every
service as a process (``zjtx serve NAME --port <free>``). While enterprises are registered, indicators reported,
innovative titles recognised (submit, county/city/province reviews, announce) and project subsidies applied for,
approved and paid, a seeded schedule SIGKILLs and restarts services, restarts PostgreSQL, kills and restarts the
broker (re-provisioning its topics: Tansu keeps records in memory), re-produces already-consumed records with the
same event id, and injects poison records. Once the load stops and the system drains, it checks and prints:

- every accepted write has its effects exactly once in every service (registry is the truth for enterprises and
  indicator revisions, evaluation for recognitions, finance for entitlements; each downstream service and the
  monitor's archive are compared to it by business key);
- no entitlement paid twice (one paid disbursement and one gateway payment per approved entitlement);
- the ledger balanced (``GET /api/v1/ledger`` and the ledger lines);
- every notice delivered once per channel, counted at the providers (the SMS/SMTP stand-ins deduplicate on the
  delivery's key: each key received once, exactly the sent deliveries' keys, one per notice and channel);
- every DLQ topic holds only the injected poison (and all of it);
- no process left behind after the stop.

    .venv/bin/python scripts/faults.py --seeds 1 2 3 [--enterprises 300] [--keep]

Exits 1 if any invariant fails. Reading the services' tables directly is deliberate: this is a test harness.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from shared.infra import die_with_parent, free_port, port_open, start_postgres, start_tansu, stop_processes  # noqa: E402
from shared.services import descriptors  # noqa: E402

AS_OF = "2026-11-09"  # the decision date of tests/e2e/test_scenario.py: MIIT-2026-2 rule sets in force
BATCH_YEAR = 2026
REPORT_YEAR = 2025
RECOGNITION_COUNTY = "330110"  # 余杭: innovative titles
PAYMENT_COUNTY = "330109"  # 萧山: project subsidies (330109-digital-2022, 20 % of the approved investment)
PAYMENT_POLICY = "330109-digital-2022"

INDICATORS: dict[str, Any] = {  # qualifies for MIIT-2026-2 innovative (tests/e2e/test_scenario.py)
    "niche_years": "8", "operating_revenue": "150000000", "operating_revenue_prev1": "130000000",
    "operating_revenue_prev2": "120000000", "main_business_revenue": "140000000",
    "main_business_revenue_prev1": "120000000", "main_business_revenue_prev2": "105000000",
    "total_assets": "100000000", "total_liabilities": "50000000", "net_profit": "15000000",
    "rd_expense": "6000000", "rd_expense_prev1": "6500000", "rd_staff": 30, "employees": 150,
    "rd_institution_level": "province", "ip_class1": 4, "ip_class1_applied": 4, "market_share_pct": "12",
    "chain_key_role": True, "six_foundations": True, "digital_level": 3, "quality_system_certified": True,
    "own_brand": True, "zj_key_industry": "1", "abnormal_operation": False, "serious_dishonesty": False,
    "major_accident_3y": False,
}


def say(msg: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------- processes


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(pid: int) -> list[int]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[0] != "Z":
                tree.setdefault(int(st[1]), []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _identity(pid: int) -> tuple[int, str] | None:
    """(pid, start time): a pid that was reused by another process does not count as the same one."""
    st = _stat(pid)
    return None if st is None or st[0] == "Z" else (pid, st[19])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


# ---------------------------------------------------------------------------------------------- the system


class System:
    """PostgreSQL, Tansu, stand-ins and services, each started here, on free ports, under one temp dir."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.pg: Any = None
        self.database_url = ""
        self.kafka_port = free_port()
        self.tansu: subprocess.Popen[bytes] | None = None
        self.standins: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.services: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.seen: dict[tuple[int, str], str] = {}  # every process this run started (and its children)
        base = 20000 + random.SystemRandom().randrange(20000)
        while any(port_open(base + off) for off in (25, 90, 91)):
            base = 20000 + random.SystemRandom().randrange(20000)
        self.port_base = base
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ZJTX_")}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def gateway_url(self) -> str:
        return self.env["ZJTX_PAYMENT_GATEWAY_URL"]

    @property
    def sms_url(self) -> str:
        return self.env["ZJTX_SMS_GATEWAY_URL"]

    def note_processes(self) -> None:
        for pid in descendants(os.getpid()):
            ident = _identity(pid)
            if ident is not None and ident not in self.seen:
                self.seen[ident] = cmdline(pid)

    def start(self, extra_env: dict[str, str]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        t = time.monotonic()
        self.pg, self.database_url = start_postgres(self.home / "pg", database="zjtx", cleanup_mode=None)
        self.tansu = start_tansu(self.kafka_port, self.home / "tansu.log")
        say(f"PostgreSQL and Tansu up ({time.monotonic() - t:.0f}s)")
        self.env |= {
            "ZJTX_ENV": "dev",
            "ZJTX_DATABASE_URL": self.database_url,
            "ZJTX_KAFKA_BOOTSTRAP": self.bootstrap,
            "ZJTX_LOG_JSON": "false",
            "ZJTX_LOG_LEVEL": "WARNING",
            "ZJTX_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "ZJTX_EVAL_AS_OF": AS_OF,
            "ZJTX_DB_POOL_SIZE": "5",
        } | extra_env
        for d in descriptors():
            for standin in d.standins:
                self.env |= standin.environment(self.port_base)
        # the tokens this process issues must be accepted by the services: same settings
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("ZJTX_")})
        t = time.monotonic()
        self.cli(["migrate"], "migrations")
        self.cli(["topics"], "topics")
        say(f"migrated, topics provisioned ({time.monotonic() - t:.0f}s)")
        t = time.monotonic()
        # only what the load needs (finance's policies and budgets, notification's commissioners): the full demo
        # (2,000 enterprises' history by default, minutes) is not part of this run
        code = ("import asyncio; from shared.settings import Settings; "
                "from services.finance.demo import load_demo as f; "
                "from services.notification.demo import load_demo as n; "
                "asyncio.run(f(Settings(service='finance'), 10)); asyncio.run(n(Settings(service='notification'), 10))")
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"demo data failed:\n{done.stdout.decode()[-3000:]}")
        say(f"demo data loaded ({time.monotonic() - t:.0f}s)")
        t = time.monotonic()
        for d in descriptors():
            for standin in d.standins:
                self.standins.append((standin.name, self.spawn(standin.argv(self.port_base), standin.name)))
        for d in descriptors():
            self.ports[d.name] = free_port()
            self.services[d.name] = self.spawn_service(d.name)
        for name in self.services:
            self.wait_ready(name, 120)
        say(f"stand-ins and services up ({time.monotonic() - t:.0f}s)")
        self.note_processes()

    def cli(self, args: list[str], what: str) -> None:
        done = subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=REPO, env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{done.stdout.decode()[-3000:]}")

    def spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.home / f"{log_name}.log", "ab")  # noqa: SIM115
        return subprocess.Popen([sys.executable, *args], cwd=REPO, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)

    def spawn_service(self, name: str) -> subprocess.Popen[bytes]:
        return self.spawn(["-m", "shared.cli", "serve", name, "--port", str(self.ports[name])], name)

    def wait_ready(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.services[name].poll() is not None:
                raise RuntimeError(f"{name} exited with {self.services[name].returncode}; see {self.home}/{name}.log")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url(name) + "/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not answer /healthz within {timeout:.0f}s")

    # ---- faults
    def kill_service(self, name: str) -> None:
        self.note_processes()
        proc = self.services[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def restart_service(self, name: str) -> None:
        self.services[name] = self.spawn_service(name)
        self.wait_ready(name, 120)
        self.note_processes()

    def stop_postgres(self) -> None:
        self.note_processes()
        self.pg.stop()

    def start_postgres(self) -> None:
        self.pg.start()

    def kill_broker(self) -> None:
        self.note_processes()
        assert self.tansu is not None
        self.tansu.kill()
        self.tansu.wait()

    def start_broker(self) -> None:
        self.tansu = start_tansu(self.kafka_port, self.home / "tansu.log")
        # --repair: a consumer asking for metadata in the moment between the start and this may have had a topic
        # auto-created with other partitions; the relays hold their rows until it is recreated as declared
        self.cli(["topics", "--repair"], "topics after the broker restart")
        self.note_processes()

    # ---- stop
    def stop(self) -> list[str]:
        """Stop everything (services first); returns the processes this run started that are still alive."""
        self.note_processes()
        stop_processes([*self.services.items(), *self.standins], 30, say)
        if self.tansu is not None:
            stop_processes([("tansu", self.tansu)], 5, say)
        if self.pg is not None:
            self.pg.stop()
        time.sleep(1.0)
        left = []
        for (pid, start), what in self.seen.items():
            if _identity(pid) == (pid, start):
                left.append(f"{pid} {what}")
        return left

    def kill_leftovers(self) -> None:
        for pid, start in self.seen:
            if _identity(pid) == (pid, start):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------- tokens, HTTP


def token(role: str, region: str, sub: str | None = None, uscc: str | None = None) -> dict[str, str]:
    from shared.auth import issue_token
    from shared.settings import Settings

    tok = issue_token(Settings(service="registry"), role=role, region=region, sub=sub, uscc=uscc, ttl=6 * 3600)
    return {"Authorization": f"Bearer {tok}"}


class Api:
    """HTTP with retries through outages: a refused connection, a timeout or a 5xx is tried again."""

    def __init__(self, system: System, patience: float) -> None:
        self.system = system
        self.client = httpx.AsyncClient(timeout=15.0)
        self.patience = patience
        self.retried = 0
        self.server_errors: Counter[str] = Counter()
        # The load's calls wait while this is cleared (the harness quiesces before killing the broker); /metrics
        # reads, which the quiescing itself makes, never wait.
        self.open = asyncio.Event()
        self.open.set()

    async def call(self, method: str, service: str, path: str, **kw: Any) -> httpx.Response:
        if path == "/metrics":
            return await self._call(method, service, path, **kw)
        await self.open.wait()
        return await self._call(method, service, path, **kw)

    async def _call(self, method: str, service: str, path: str, **kw: Any) -> httpx.Response:
        deadline = time.monotonic() + self.patience
        delay = 0.2
        while True:
            try:
                r = await self.client.request(method, self.system.url(service) + path, **kw)
                if r.status_code < 500:
                    return r
                self.server_errors[f"{service} {r.status_code}"] += 1
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {service}{path}: no answer within {self.patience:.0f}s")
            self.retried += 1
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 1.5)


@dataclass
class Load:
    enterprises: list[str] = field(default_factory=list)
    liaisons: dict[str, str] = field(default_factory=dict)
    recognised: list[str] = field(default_factory=list)  # usccs whose innovative title was announced
    applications: dict[str, str] = field(default_factory=dict)  # project_ref → entitlement id
    approved: set[str] = field(default_factory=set)
    refused: Counter[str] = field(default_factory=Counter)  # step → count of 4xx answers (shown, not failed)


def _uscc(region: str, rng: random.Random) -> str:
    from services.registry.domain.uscc import make_uscc

    return make_uscc(region, "".join(rng.choice("0123456789") for _ in range(8)))


async def wait_until(check: Callable[[], Awaitable[bool]], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if await check():
                return True
        await asyncio.sleep(1.0)
    return False


async def run_load(api: Api, rng: random.Random, n: int, load: Load, concurrency: int) -> None:
    """Register ``n`` enterprises and report their indicators; a third of them (余杭) are recognised
    innovative; a third (萧山) apply for a digital-transformation subsidy, approved by another official and paid."""
    county = {r: token("county_official", r, sub=f"county-{r}-a") for r in (RECOGNITION_COUNTY, PAYMENT_COUNTY)}
    checker = {r: token("county_official", r, sub=f"county-{r}-b") for r in (RECOGNITION_COUNTY, PAYMENT_COUNTY)}
    city_a = token("city_official", "330100", sub="city-330100-a")
    prov_a = token("province_official", "330000", sub="prov-330000-a")
    prov_b = token("province_official", "330000", sub="prov-330000-b")
    sem = asyncio.Semaphore(concurrency)
    plan = []
    for i in range(n):
        kind = ("recognise", "pay", "plain")[i % 3]
        region = PAYMENT_COUNTY if kind == "pay" else RECOGNITION_COUNTY
        plan.append((kind, region, _uscc(region, rng), rng.randrange(10**8)))

    async def one(kind: str, region: str, uscc: str, salt: int) -> None:
        async with sem:
            mobile = f"139{salt:08d}"
            r = await api.call("POST", "registry", "/api/v1/enterprises", headers=county[region], json={
                "uscc": uscc, "name": f"混沌测试企业{uscc[-6:]}有限公司", "region_code": region,
                "industry_code": "3562", "founded_on": "2012-05-01", "scale": "medium",
                "liaison": {"name": "张联络", "mobile": mobile, "email": f"l{salt}@chaos.example.cn"}})
            if r.status_code not in (201, 409):
                load.refused[f"register {r.status_code}"] += 1
                return
            load.enterprises.append(uscc)
            load.liaisons[uscc] = mobile
            for employees in (150, 151):  # two revisions each
                r = await api.call("PUT", "registry", f"/api/v1/enterprises/{uscc}/indicators/{REPORT_YEAR}",
                                   headers=county[region], json={"indicators": {**INDICATORS, "employees": employees}})
                if r.status_code != 200:
                    load.refused[f"indicators {r.status_code}"] += 1
        if kind == "recognise":
            await recognise(api, uscc, county[region], city_a, prov_a, prov_b, load)
        elif kind == "pay":
            async with sem:
                ref = f"chaos-{uscc}"
                body = {"uscc": uscc, "region_code": region, "policy_id": PAYMENT_POLICY, "project_ref": ref,
                        "year": REPORT_YEAR, "figures": {"approved_amount": f"{10000 + salt % 90000}.00"}}
                r = await api.call("POST", "finance", "/api/v1/entitlements/applications", json=body,
                                   headers=county[region] | {"Idempotency-Key": f"apply-{ref}"})
                if r.status_code != 201:
                    load.refused[f"apply {r.status_code} {r.text[:120]}"] += 1
                    return
                ent = r.json()["id"]
                load.applications[ref] = ent
                r = await api.call("POST", "finance", f"/api/v1/entitlements/{ent}/approve", json={"comment": "同意"},
                                   headers=checker[region] | {"Idempotency-Key": f"approve-{ref}"})
                if r.status_code != 200:
                    load.refused[f"approve {r.status_code} {r.text[:120]}"] += 1
                    return
                load.approved.add(ent)

    await asyncio.gather(*(one(*p) for p in plan))


async def recognise(api: Api, uscc: str, county: dict[str, str], city: dict[str, str], prov: dict[str, str],
                    announcer: dict[str, str], load: Load) -> None:
    async def evaluated() -> bool:
        r = await api.call("GET", "evaluation", f"/api/v1/enterprises/{uscc}/evaluations", headers=county)
        return r.status_code == 200 and any(
            i["tier"] == "innovative" and i["as_of"] == AS_OF and i["eligible"] for i in r.json()["items"])

    if not await wait_until(evaluated, 90):
        load.refused["innovative evaluation not seen within 90 s"] += 1
        return
    ent = token("enterprise", RECOGNITION_COUNTY, uscc=uscc, sub=f"ent-{uscc}")
    r = await api.call("POST", "evaluation", "/api/v1/applications", headers=ent,
                       json={"uscc": uscc, "tier": "innovative", "batch_year": BATCH_YEAR})
    if r.status_code != 201:
        load.refused[f"submit {r.status_code} {r.text[:120]}"] += 1
        return
    app = r.json()
    order = ["submitted", "county_approved", "city_approved", "publicity", "recognised"]

    async def state() -> dict[str, Any]:
        """After a 409: the write whose answer was lost (a kill, a restart) may have gone through."""
        got = await api.call("GET", "evaluation", f"/api/v1/applications/{app['id']}", headers=prov)
        body: dict[str, Any] = got.json()
        return body

    for i, (stage, headers) in enumerate((("county", county), ("city", city), ("province", prov))):
        r = await api.call("POST", "evaluation", f"/api/v1/applications/{app['id']}/reviews", headers=headers,
                           json={"stage": stage, "decision": "approved", "comment": f"{stage} 同意"})
        if r.status_code == 409 and (now := await state())["state"] in order[i + 1:]:
            load.refused[f"review {stage}: 409, had gone through"] += 1
            app = now
            continue
        if r.status_code != 200:
            load.refused[f"review {stage} {r.status_code} {r.text[:120]}"] += 1
            return
        app = r.json()
    ends = app["publicity_ends_on"]
    announced = (date.fromisoformat(ends) + timedelta(days=1)).isoformat()
    r = await api.call("POST", "evaluation", f"/api/v1/applications/{app['id']}/announce", headers=announcer,
                       json={"announced_on": announced})
    if r.status_code == 409 and (await state())["state"] == "recognised":
        load.refused["announce: 409, had gone through"] += 1
    elif r.status_code != 200:
        load.refused[f"announce {r.status_code} {r.text[:120]}"] += 1
        return
    load.recognised.append(uscc)


# ---------------------------------------------------------------------------------------------- broker faults


TOPICS = [f"zjtx.{d.name}.events" for d in descriptors() if d.publishes]


async def consumed_records(bootstrap: str, topics: list[str]) -> list[Any]:
    """Every record now on ``topics`` (read with a group-less consumer from the start)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = []
        for t in topics:
            for p in consumer.partitions_for_topic(t) or await _partitions(consumer, t):
                parts.append(TopicPartition(t, p))
        if not parts:
            return []
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[Any] = []
        todo = {tp for tp in parts if ends[tp] > 0}
        deadline = time.monotonic() + 30
        while todo and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, msgs in batch.items():
                out.extend(msgs)
                if msgs and msgs[-1].offset + 1 >= ends[tp]:
                    todo.discard(tp)
        return out
    finally:
        await consumer.stop()


async def _partitions(consumer: Any, topic: str) -> set[int]:
    with contextlib.suppress(Exception):
        await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def produce(bootstrap: str, records: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def inject_duplicates(system: System, rng: random.Random, count: int) -> int:
    records = await consumed_records(system.bootstrap, TOPICS)
    if not records:
        return 0
    picked = rng.sample(records, min(count, len(records)))
    await produce(system.bootstrap, [(m.topic, m.key, m.value, list(m.headers)) for m in picked])
    return len(picked)


async def inject_poison(system: System, rng: random.Random, poison: dict[str, bytes]) -> list[str]:
    """One malformed JSON and one unknown-type record on a random producing topic (copied envelope headers)."""
    topic = rng.choice([t for t in TOPICS if t != "zjtx.monitor.events"])
    records = await consumed_records(system.bootstrap, [topic])
    base = [(k, v) for k, v in (records[0].headers if records else []) if k not in ("ce_id", "ce_type")]
    if not base:
        base = [("ce_specversion", b"1.0"), ("ce_source", b"/zjtx/chaos"), ("ce_time", b"2026-11-09T00:00:00Z"),
                ("content-type", b"application/json")]
    malformed_id, unknown_id = f"poison-{uuid.uuid4()}", f"poison-{uuid.uuid4()}"
    malformed = b'{"uscc": "91330110MA27XX0072", "broken'
    unknown = b'{"uscc": "91330110MA27XX0072", "what": "nobody declares this type"}'
    etype = f"zjtx.{topic.split('.')[1]}.enterprise.registered.v1".encode()
    await produce(system.bootstrap, [
        (topic, b"91330110MA27XX0072", malformed, [*base, ("ce_id", malformed_id.encode()), ("ce_type", etype)]),
        (topic, b"91330110MA27XX0072", unknown,
         [*base, ("ce_id", unknown_id.encode()), ("ce_type", b"zjtx.chaos.unknown.thing.v1")]),
    ])
    poison[malformed_id] = malformed
    poison[unknown_id] = unknown
    return [f"{topic}: malformed JSON {malformed_id}", f"{topic}: unknown type {unknown_id}"]


# ---------------------------------------------------------------------------------------------- schedule


@dataclass
class Plan:
    enterprises: int
    kills: int
    pg_restarts: int
    broker_restarts: int
    duplicate_rounds: int
    duplicates_per_round: int
    concurrency: int = 8
    gap: tuple[float, float] = (4.0, 10.0)  # seconds between faults
    drain: float = 300.0  # seconds to wait for empty outboxes and no consumer lag


async def fault_schedule(system: System, plan: Plan, rng: random.Random, stop: asyncio.Event,
                         injected: list[str], api: Api) -> None:
    faults = (["kill"] * plan.kills + ["postgres"] * plan.pg_restarts + ["broker"] * plan.broker_restarts
              + ["duplicates"] * plan.duplicate_rounds)
    rng.shuffle(faults)
    names = [d.name for d in descriptors()]

    def log(msg: str) -> None:
        injected.append(msg)
        say(f"FAULT {msg}")

    for i, fault in enumerate(faults):
        await asyncio.sleep(rng.uniform(*plan.gap) / (3 if i == 0 else 1))
        if fault == "kill":
            name = rng.choice(names)
            down = rng.uniform(0.5, 3.0)
            log(f"SIGKILL {name}, restart after {down:.1f}s")
            await asyncio.to_thread(system.kill_service, name)
            await asyncio.sleep(down)
            await asyncio.to_thread(system.restart_service, name)
        elif fault == "postgres":
            down = rng.uniform(1.0, 4.0)
            log(f"stop PostgreSQL, start again after {down:.1f}s")
            await asyncio.to_thread(system.stop_postgres)
            await asyncio.sleep(down)
            await asyncio.to_thread(system.start_postgres)
        elif fault == "broker":
            down = rng.uniform(1.0, 4.0)
            # Tansu keeps records in memory: what it acknowledged and nobody consumed yet dies with it (Apache Kafka
            # keeps it on disk). So the load pauses and everything in flight is consumed before the kill; the load
            # resumes while the broker is down, its writes waiting in the outboxes, which is what is tested.
            api.open.clear()  # calls already under way finish; the drain waits for their effects to settle
            _, quiet = await drain(system, api, within=plan.drain)
            say(f"quiesced before the broker kill: {quiet}")
            log(f"SIGKILL the broker (records in memory are lost), start again after {down:.1f}s, zjtx topics --repair")
            await asyncio.to_thread(system.kill_broker)
            api.open.set()
            await asyncio.sleep(down)
            await asyncio.to_thread(system.start_broker)
        elif fault == "duplicates":
            n = await inject_duplicates(system, rng, plan.duplicates_per_round)
            log(f"re-produced {n} already-published records with their event ids")
    stop.set()


# ---------------------------------------------------------------------------------------------- drain, checks


async def sql(system: System, query: str, *args: Any) -> list[Any]:
    import asyncpg

    from shared.db import asyncpg_dsn
    from shared.settings import normalise_database_url

    conn = await asyncpg.connect(asyncpg_dsn(normalise_database_url(system.database_url)))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def backlog(system: System, api: Api) -> tuple[int, float, dict[str, float]]:
    """Outbox rows (from the tables), total consumer lag and the lag per consumer and topic (from /metrics)."""
    pending = 0
    for d in descriptors():
        if d.publishes:
            pending += (await sql(system, f"SELECT count(*) FROM {d.name}.outbox"))[0][0]
    lags: dict[str, float] = {}
    for d in descriptors():
        r = await api.call("GET", d.name, "/metrics")
        for line in r.text.splitlines():
            if line.startswith("consumer_lag{") and float(line.rsplit(" ", 1)[1]) > 0:
                labels = line.split("{", 1)[1].rsplit("}", 1)[0]
                lags[labels] = lags.get(labels, 0.0) + float(line.rsplit(" ", 1)[1])
    return pending, sum(lags.values()), lags


async def fingerprint(system: System) -> tuple[Any, ...]:
    rows = []
    for table in ("registry.indicator_revisions", "evaluation.indicator_reports", "evaluation.recognitions",
                  "finance.entitlements", "finance.ledger_lines", "notification.notices", "notification.deliveries",
                  "monitor.events"):
        rows.append((await sql(system, f"SELECT count(*) FROM {table}"))[0][0])
    paid = await sql(system, "SELECT count(*) FROM finance.disbursements WHERE state = 'paid'")
    sent = await sql(system, "SELECT count(*) FROM notification.deliveries WHERE status = 'sent'")
    return (*rows, paid[0][0], sent[0][0])


async def in_flight(system: System) -> dict[str, int]:
    """Work the workers still owe the outside world: deliveries not yet sent (due, in backoff or claimed) and payment
    instructions not yet paid (pending, or sent and waiting for the gateway's answer)."""
    deliveries = (await sql(system, "SELECT count(*) FROM notification.deliveries "
                            "WHERE status IN ('pending', 'sending', 'deferred')"))[0][0]
    payments = (await sql(system, "SELECT count(*) FROM finance.disbursements "
                          "WHERE state IN ('pending', 'sent')"))[0][0]
    return {k: v for k, v in (("deliveries", deliveries), ("payments", payments)) if v}


async def drain(system: System, api: Api, within: float) -> tuple[bool, str]:
    """Until the outboxes are empty, consumer lag is 0, no delivery or payment is owed (due, in backoff or
    claimed by a worker) and the counts stay the same for three polls."""
    deadline = time.monotonic() + within
    last: tuple[Any, ...] = ()
    stable = 0
    started = time.monotonic()
    while time.monotonic() < deadline:
        pending, lag, _ = await backlog(system, api)
        owed = await in_flight(system)
        now = await fingerprint(system)
        stable = stable + 1 if (now == last and pending == 0 and lag == 0 and not owed) else 0
        last = now
        if stable >= 3:
            return True, (f"outboxes empty, consumer lag 0, no delivery or payment owed after "
                          f"{time.monotonic() - started:.0f}s")
        await asyncio.sleep(3.0)
    pending, lag, lags = await backlog(system, api)
    return False, (f"after {within:.0f}s: outbox rows {pending}, consumer lag {lag:.0f} {lags}, "
                   f"owed {await in_flight(system)}")


@dataclass
class Verdict:
    results: list[tuple[bool, str, str]] = field(default_factory=list)

    def check(self, ok: bool, name: str, figures: str) -> None:
        self.results.append((ok, name, figures))
        print(f"  [{'ok' if ok else 'FAILED'}] {name}: {figures}", flush=True)

    @property
    def held(self) -> bool:
        return all(ok for ok, _, _ in self.results)


def _by(rows: list[Any]) -> dict[Any, Any]:
    return {r[0]: r[1] for r in rows}


async def check_invariants(system: System, api: Api, load: Load, poison: dict[str, bytes], v: Verdict) -> None:
    ours = load.enterprises
    # ---- enterprises: registry is the truth; every consumer holds each once
    reg = {r[0] for r in await sql(system, "SELECT uscc FROM registry.enterprises WHERE uscc = ANY($1)", ours)}
    v.check(reg == set(ours), "registry holds every accepted registration",
            f"{len(ours)} accepted, {len(reg)} in registry.enterprises")
    for schema in ("evaluation", "notification", "monitor"):
        rows = await sql(system, f"SELECT uscc, count(*) FROM {schema}.enterprises WHERE uscc = ANY($1) GROUP BY 1",
                         ours)
        got = _by(rows)
        v.check(set(got) == reg and all(c == 1 for c in got.values()),
                f"{schema} knows every registered enterprise once", f"{len(got)} of {len(reg)}, "
                f"{sum(1 for c in got.values() if c != 1)} duplicated")
    archived = _by(await sql(system, "SELECT subject, count(*) FROM monitor.events WHERE type = "
                             "'zjtx.registry.enterprise.registered.v1' AND subject = ANY($1) GROUP BY 1", ours))
    v.check(set(archived) == reg and set(archived.values()) <= {1}, "monitor archived each registration once",
            f"{len(archived)} enterprises, counts {dict(Counter(archived.values()))}")
    # ---- indicator revisions: registry is the truth; evaluation holds the latest, the archive each once
    revs = await sql(system, "SELECT uscc, count(*), max(revision) FROM registry.indicator_revisions "
                     "WHERE uscc = ANY($1) AND year = $2 GROUP BY 1", ours, REPORT_YEAR)
    latest = {r[0]: r[2] for r in revs}
    counts = {r[0]: r[1] for r in revs}
    ev = _by(await sql(system, "SELECT uscc, revision FROM evaluation.indicator_reports WHERE uscc = ANY($1) "
                       "AND year = $2", ours, REPORT_YEAR))
    behind = [u for u, rev in latest.items() if ev.get(u) != rev]
    v.check(not behind, "evaluation applied every enterprise's latest indicator revision",
            f"{sum(counts.values())} revisions of {len(latest)} enterprises; {len(behind)} behind"
            + (f" e.g. {behind[0]}: registry r{latest[behind[0]]}, evaluation {ev.get(behind[0])}" if behind else ""))
    arch = _by(await sql(system, "SELECT subject, count(*) FROM monitor.events WHERE type = "
                         "'zjtx.registry.indicators.reported.v1' AND subject = ANY($1) GROUP BY 1", ours))
    wrong = [u for u in counts if arch.get(u) != counts[u]]
    v.check(not wrong, "monitor archived each indicator revision once",
            f"{sum(arch.values())} archived of {sum(counts.values())}; {len(wrong)} enterprises differ")
    evals = _by(await sql(system, "SELECT uscc, count(*) FROM evaluation.evaluations WHERE uscc = ANY($1) "
                          "AND ruleset_id = 'MIIT-2026-2-innovative' AND trigger = 'indicators' AND as_of = $2 "
                          "GROUP BY 1", ours, date.fromisoformat(AS_OF)))
    off = [u for u in counts if evals.get(u) != counts[u]]
    v.check(not off, "evaluation evaluated each indicator revision once (MIIT-2026-2-innovative)",
            f"{sum(evals.values())} evaluations for {sum(counts.values())} revisions; {len(off)} enterprises differ"
            + (f" e.g. {off[0]}: {counts[off[0]]} revisions, {evals.get(off[0], 0)} evaluations" if off else ""))
    # ---- recognitions: evaluation is the truth; registry, notification, monitor, each once
    recs = {str(r[0]): r[1] for r in await sql(
        system, "SELECT id, uscc FROM evaluation.recognitions WHERE uscc = ANY($1)", ours)}
    v.check(set(recs.values()) == set(load.recognised) and len(recs) == len(load.recognised),
            "evaluation holds one recognition per announced application",
            f"{len(load.recognised)} announced, {len(recs)} recognitions")
    for table, col in (("registry.recognitions", "recognition_id"), ("notification.recognitions", "recognition_id"),
                       ("monitor.recognitions", "recognition_id")):
        got = Counter(str(r[0]) for r in await sql(system, f"SELECT {col} FROM {table} WHERE uscc = ANY($1)", ours))
        v.check(set(got) == set(recs) and set(got.values()) <= {1}, f"{table} has each recognition once",
                f"{len(got)} of {len(recs)}, {sum(1 for c in got.values() if c > 1)} duplicated")
    # one assignment decision per recognised enterprise: 'assigned', or 'unassigned' once every commissioner of the
    # area is at capacity (the small demo has a few commissioners of capacity 50)
    assigned = _by(await sql(system, "SELECT status, count(*) FROM notification.assignments WHERE uscc = ANY($1) "
                             "GROUP BY 1", list(recs.values())))
    v.check(sum(assigned.values()) == len(set(recs.values())),
            "notification decided a commissioner assignment for every recognised enterprise",
            f"{sum(assigned.values())} of {len(set(recs.values()))} ({assigned})")
    # ---- money
    ents = await sql(system, "SELECT figures->>'project_ref', count(*) FROM finance.entitlements "
                     "WHERE policy_id = $1 AND uscc = ANY($2) GROUP BY 1", PAYMENT_POLICY, ours)
    by_ref = {r[0]: r[1] for r in ents}
    n_ents = (await sql(system, "SELECT count(*) FROM finance.entitlements WHERE policy_id = $1 AND uscc = ANY($2)",
                        PAYMENT_POLICY, ours))[0][0]
    v.check(n_ents == len(load.applications), "one entitlement per accepted subsidy application",
            f"{len(load.applications)} accepted (Idempotency-Key), {n_ents} entitlements"
            + (f", by project_ref {len(by_ref)}" if by_ref and None not in by_ref else ""))
    paid = await sql(system, "SELECT e.id, e.status, count(d.id) FILTER (WHERE d.state = 'paid') FROM "
                     "finance.entitlements e LEFT JOIN finance.disbursements d ON d.entitlement_id = e.id "
                     "WHERE e.policy_id = $1 AND e.uscc = ANY($2) GROUP BY 1, 2", PAYMENT_POLICY, ours)
    twice = [r for r in paid if r[2] > 1]
    unpaid = [r for r in paid if str(r[0]) in load.approved and (r[2] != 1 or r[1] != "paid")]
    v.check(not twice and not unpaid, "every approved entitlement paid exactly once",
            f"{len(load.approved)} approved, {sum(1 for r in paid if r[2] == 1)} paid once, {len(twice)} paid twice, "
            f"{len(unpaid)} not paid")
    state = (await api.client.get(system.gateway_url + "/_state")).json()
    keys = Counter(p.get("idempotency_key") or p.get("key") or p.get("reference") for p in state["payments"])
    ours_set = set(ours)
    gw = [p for p in state["payments"] if p.get("payee_uscc") in ours_set]
    per_payee = Counter(p["payee_uscc"] for p in gw)
    v.check(len(gw) == len(load.approved) and set(per_payee.values()) <= {1},
            "the gateway paid each approved entitlement once",
            f"{len(gw)} gateway payments for {len(load.approved)} approved; payees paid twice: "
            f"{sum(1 for c in per_payee.values() if c > 1)}; keys seen twice {sum(1 for c in keys.values() if c > 1)}")
    r = await api.call("GET", "finance", f"/api/v1/ledger?jurisdiction={PAYMENT_COUNTY}&year={REPORT_YEAR}",
                       headers=token("county_official", PAYMENT_COUNTY))
    lines = await sql(system, "SELECT coalesce(sum(debit), 0), coalesce(sum(credit), 0) FROM finance.ledger_lines")
    debit, credit = Decimal(lines[0][0]), Decimal(lines[0][1])
    v.check(r.status_code == 200 and r.json().get("balanced") is True and debit == credit, "the ledger is balanced",
            f"API balanced={r.json().get('balanced') if r.status_code == 200 else r.status_code}; all lines debit "
            f"{debit} = credit {credit}")
    # ---- notices: each delivered once per channel, counted at the providers (the SMS gateway and the mail server
    # stand-ins deduplicate on the delivery's key, as the provider contract says): every key received once, the keys
    # received exactly the sent deliveries', and no notice reached one channel twice
    from services.notification.app.delivery import idempotency_key, message_id

    dup = await sql(system, "SELECT notice_id, channel, count(*) FROM notification.deliveries WHERE status = 'sent' "
                    "GROUP BY 1, 2 HAVING count(*) > 1")
    sent_rows = await sql(system, "SELECT id, notice_id, channel FROM notification.deliveries WHERE status = 'sent'")
    unsent = _by(await sql(system, "SELECT status, count(*) FROM notification.deliveries WHERE status <> 'sent' "
                           "GROUP BY 1"))
    notices_dup = await sql(system, "SELECT dedup_key, recipient, count(*) FROM notification.notices GROUP BY 1, 2 "
                            "HAVING count(*) > 1")
    sms = (await api.client.get(system.sms_url + "/sms?limit=10000")).json()
    emails = (await api.client.get(system.sms_url + "/emails?limit=10000")).json()
    deduplicated = (await api.client.get(system.sms_url + "/_state")).json()
    key_of = {"sms": idempotency_key, "email": message_id}
    expected = {ch: {key_of[ch](int(r[0])): (r[1], ch) for r in sent_rows if r[2] == ch} for ch in key_of}
    received = {"sms": Counter(m["key"] for m in sms), "email": Counter(m["message_id"] for m in emails)}
    figures = []
    ok = bool(sms) and not dup and not notices_dup and not unsent
    for ch in ("sms", "email"):
        got, want = received[ch], expected[ch]
        twice = sum(1 for c in got.values() if c > 1)
        per_notice = Counter(want[k] for k in got if k in want)
        ok = ok and twice == 0 and set(got) == set(want) and sum(got.values()) == len(want) and (
            set(per_notice.values()) <= {1})
        figures.append(f"{ch}: {len(want)} sent, provider received {sum(got.values())} ({len(got)} keys, "
                       f"{twice} twice, {len(set(want) - set(got))} missing, {len(set(got) - set(want))} unknown; "
                       f"{deduplicated['sms' if ch == 'sms' else 'emails']['duplicates']} retries deduplicated)")
    v.check(ok, "every notice delivered once per channel (at the providers)",
            "; ".join(figures) + f"; not sent {unsent or 0}; notice/channel sent twice {len(dup)}; "
            f"notices twice {len(notices_dup)}")
    # ---- DLQ: only (and all) the injected poison
    dlq = await consumed_records(system.bootstrap, [f"{t}.dlq" for t in TOPICS])
    ids = [dict(m.headers).get("ce_id", b"").decode() for m in dlq]
    foreign = [i for i in ids if i not in poison]
    missing = [i for i in poison if i not in ids]
    v.check(not foreign and not missing, "the DLQ topics hold only the injected poison",
            f"{len(dlq)} dead letters for {len(poison)} poison records ({dict(Counter(ids))}); "
            f"{len(foreign)} not injected" + (f" e.g. {foreign[0]}" if foreign else "") + f"; {len(missing)} missing")


# ---------------------------------------------------------------------------------------------- one seed


async def _run(system: System, plan: Plan, seed: int, v: Verdict) -> None:
    rng = random.Random(seed)
    api = Api(system, patience=180)
    load = Load()
    injected: list[str] = []
    poison: dict[str, bytes] = {}
    stop = asyncio.Event()

    async def sampler() -> None:
        while not stop.is_set():
            system.note_processes()
            await asyncio.sleep(1.0)

    started = time.monotonic()
    sampling = asyncio.create_task(sampler())
    faults = asyncio.create_task(fault_schedule(system, plan, random.Random(seed * 7919), stop, injected, api))
    try:
        # the load flows until the schedule has run its course (and at least plan.enterprises were driven)
        await run_load(api, rng, plan.enterprises, load, plan.concurrency)
        while not faults.done():
            await run_load(api, rng, BATCH, load, plan.concurrency)
        say(f"load done in {time.monotonic() - started:.0f}s: {len(load.enterprises)} enterprises, "
            f"{len(load.recognised)} recognised, {len(load.applications)} subsidy applications, "
            f"{len(load.approved)} approved; HTTP retries {api.retried}, 5xx {dict(api.server_errors)}"
            + (f"; refused {dict(load.refused)}" if load.refused else ""))
        await faults  # the schedule runs to its end even when the load finished first
        for line in await inject_poison(system, rng, poison):
            injected.append(line)
            say(f"FAULT poison {line}")
        n = await inject_duplicates(system, rng, plan.duplicates_per_round)
        injected.append(f"re-produced {n} already-published records with their event ids")
        say(f"FAULT re-produced {n} already-published records with their event ids")
        drained = await drain(system, api, within=plan.drain)
        say(drained[1])
        events = (await sql(system, "SELECT count(*) FROM monitor.events"))[0][0]
        say(f"{events} events archived by the monitor; faults injected: {len(injected)}")
        print(f"seed {seed} invariants:", flush=True)
        v.check(drained[0], "the system drained (every outbox published, every consumer caught up)", drained[1])
        await check_invariants(system, api, load, poison, v)
    finally:
        stop.set()
        sampling.cancel()
        faults.cancel()
        with contextlib.suppress(BaseException):
            await faults
        await api.client.aclose()


BATCH = 15  # enterprises per round of the load: 5 recognised, 5 paid, 5 only reported


def run_seed(seed: int, plan: Plan, keep: bool = False) -> bool:
    home = Path(tempfile.mkdtemp(prefix=f"zjtx-faults-{seed}-"))
    system = System(home)
    v = Verdict()
    say(f"seed {seed}: at least {plan.enterprises} enterprises, {plan.kills} service kills, "
        f"{plan.pg_restarts} PostgreSQL restarts, {plan.broker_restarts} broker restarts, "
        f"{plan.duplicate_rounds} duplicate rounds; home {home}")
    try:
        system.start({})
        say("system up: " + ", ".join(f"{n}:{p}" for n, p in system.ports.items())
            + f", broker {system.bootstrap}, stand-ins from port base {system.port_base}")
        asyncio.run(_run(system, plan, seed, v))
    except Exception as exc:  # the harness itself failed: that is a failed run, with the reason
        v.check(False, "the run completed", f"{type(exc).__name__}: {exc}")
    finally:
        left = system.stop()
        v.check(not left, "no process left behind after the stop",
                f"{len(system.seen)} processes started, {len(left)} alive" + (f": {left[:5]}" if left else ""))
        system.kill_leftovers()
        if v.held and not keep:
            shutil.rmtree(home, ignore_errors=True)
        else:
            say(f"logs kept in {home}")
    print(f"seed {seed}: " + ("all invariants held" if v.held else
                              f"{sum(1 for ok, _, _ in v.results if not ok)} invariant(s) FAILED"), flush=True)
    return v.held


FULL = Plan(enterprises=240, kills=4, pg_restarts=1, broker_restarts=1, duplicate_rounds=2, duplicates_per_round=40)
# ``make test`` (tests/e2e/test_faults.py): a few hundred events, one kill, one broker restart, duplicates, poison
REDUCED = Plan(enterprises=45, kills=1, pg_restarts=0, broker_restarts=1, duplicate_rounds=1, duplicates_per_round=25,
               gap=(2.0, 5.0), drain=90.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--reduced", action="store_true", help="the reduced schedule of make test")
    p.add_argument("--enterprises", type=int)
    p.add_argument("--kills", type=int)
    p.add_argument("--pg-restarts", type=int)
    p.add_argument("--broker-restarts", type=int)
    p.add_argument("--duplicate-rounds", type=int)
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data) of every seed")
    args = p.parse_args(argv)

    def interrupted(signum: int, _: Any) -> None:
        raise KeyboardInterrupt  # the finally blocks stop what this run started

    signal.signal(signal.SIGTERM, interrupted)
    base = REDUCED if args.reduced else FULL
    given = {k: getattr(args, k) for k in ("enterprises", "kills", "pg_restarts", "broker_restarts",
                                            "duplicate_rounds") if getattr(args, k) is not None}
    plan = Plan(**{**base.__dict__, **given})
    held = [run_seed(seed, plan, args.keep) for seed in args.seeds]
    print(f"{sum(held)} of {len(held)} seeds held every invariant", flush=True)
    return 0 if all(held) else 1


if __name__ == "__main__":
    sys.exit(main())

"""The production shape, checked without a Docker engine: docker-compose.yml, deploy/Dockerfile,
deploy/entrypoint.sh, deploy/nginx.conf and the broker's SASL/ACL scripts (deploy/kafka/), against the services'
real settings, routes and subscriptions."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.monitor.app.replay import replay_topic
from shared.events.catalog import ALL_TOPICS, SERVICES, dlq_of, topic_of
from shared.events.kafka import security_options
from shared.services import descriptor, load_attribute
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
NGINX = ROOT / "deploy" / "nginx.conf"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
KAFKA_START = ROOT / "deploy" / "kafka" / "start.sh"
KAFKA_ACLS = ROOT / "deploy" / "kafka" / "acls.sh"


@cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def svc(name: str) -> dict[str, Any]:
    services: dict[str, Any] = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return dict(services[name])


def env_of(name: str) -> dict[str, str]:
    env = svc(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


_VAR = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:\?|:-)(?P<arg>[^}]*))?\}")


def interpolate(value: str, given: dict[str, str]) -> str:
    """Compose-style ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` substitution (``:?`` must be given)."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m["name"], m["op"], m["arg"]
        if name in given:
            return given[name]
        if op == ":?":
            raise KeyError(f"{name} is required: {arg}")
        return arg or ""

    return _VAR.sub(sub, value)


def required_vars() -> set[str]:
    return {m["name"] for m in _VAR.finditer(COMPOSE.read_text()) if m["op"] == ":?"}


def given_secrets() -> dict[str, str]:
    """A value for every secret compose requires (the Kafka passwords distinct per principal)."""
    given = {name: f"{name.lower().replace('_', '-')}-0123456789abcdef" for name in required_vars()}
    return {**given, "ZJTX_JWT_SECRET": "s3cret-from-the-vault-0123456789abcdef", "ZJTX_DB_PASSWORD": "pw"}


def password_var(principal: str) -> str:
    return f"ZJTX_KAFKA_{principal.upper().replace('-', '_')}_PASSWORD"


def depends(name: str) -> dict[str, str]:
    deps = svc(name).get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {k: (v or {}).get("condition", "service_started") for k, v in deps.items()}


# --- compose: application services --------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_app_service_shape(name: str) -> None:
    s = svc(name)
    assert s.get("build") or s.get("image"), "build or image"
    build = s["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert s.get("restart") == "unless-stopped"
    env = env_of(name)
    assert env["ZJTX_SERVICE"] == name
    assert env["ZJTX_ENV"] == "prod"
    assert env["ZJTX_PORT"] == str(descriptor(name).port)
    assert env["ZJTX_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["ZJTX_DATABASE_URL"]
    assert env["ZJTX_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["ZJTX_KAFKA_IDEMPOTENCE"].lower() == "true"
    assert env["ZJTX_JWT_SECRET"].startswith("${ZJTX_JWT_SECRET:?"), "the JWT secret must be required from env"
    # Its own broker principal, named after it, its password required from the environment.
    assert env["ZJTX_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert env["ZJTX_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["ZJTX_KAFKA_SASL_USERNAME"] == name
    assert env["ZJTX_KAFKA_SASL_PASSWORD"].startswith("${" + password_var(name) + ":?")
    assert depends(name) == {
        "postgres": "service_healthy",
        "kafka": "service_healthy",
        "migrate": "service_completed_successfully",
        "kafka-acls": "service_completed_successfully",
        "topics": "service_completed_successfully",
    }


@pytest.mark.parametrize("name", SERVICES)
def test_app_healthcheck_hits_healthz_on_the_service_port(name: str) -> None:
    hc = svc(name)["healthcheck"]
    test = " ".join(hc["test"]) if isinstance(hc["test"], list) else hc["test"]
    assert f"http://127.0.0.1:{descriptor(name).port}/healthz" in test
    assert "curl" not in test, "python:3.11-slim has no curl"
    assert hc.get("interval") and hc.get("retries")
    # The python one-liner is valid Python.
    if isinstance(hc["test"], list) and hc["test"][:3] == ["CMD", "python", "-c"]:
        compile(hc["test"][3], "<healthcheck>", "exec")


@pytest.mark.parametrize("name", SERVICES)
def test_app_environment_builds_valid_prod_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("ZJTX_"):
            monkeypatch.delenv(key)
    given = given_secrets()
    for key, value in env_of(name).items():
        monkeypatch.setenv(key, interpolate(value, given))
    settings = Settings(service=name)
    assert settings.env == "prod"
    assert settings.database_url == "postgresql+asyncpg://zjtx:pw@postgres:5432/zjtx"
    assert settings.kafka_idempotence is True
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.http_port == descriptor(name).port
    assert settings.jwt_secret == given["ZJTX_JWT_SECRET"]
    assert settings.kafka_security_protocol == "SASL_PLAINTEXT"
    assert settings.kafka_sasl_username == name
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == given[password_var(name)]
    assert security_options(settings)["sasl_plain_username"] == name  # what every aiokafka client gets
    # Without the secret compose refuses to interpolate at all.
    with pytest.raises(KeyError, match="ZJTX_JWT_SECRET"):
        interpolate(env_of(name)["ZJTX_JWT_SECRET"], {})


def test_required_secrets() -> None:
    principals = ["admin", *SERVICES, "topics", AGENCY]
    assert {"ZJTX_JWT_SECRET", "ZJTX_DB_PASSWORD", *map(password_var, principals)} <= required_vars()
    # Never a literal password: every credential in the file comes from ${VAR:?…}.
    for name in ["kafka", "kafka-acls", "topics", *SERVICES]:
        for key, value in env_of(name).items():
            if "PASSWORD" in key:
                assert re.fullmatch(r"\$\{ZJTX_[A-Z_]+_PASSWORD:\?[^}]+\}", value), (name, key, value)


# --- compose: infrastructure and jobs ------------------------------------------------------------------------


def test_kafka_is_kraft_single_node_without_zookeeper() -> None:
    k = svc("kafka")
    assert k["image"].startswith("apache/kafka:")
    env = env_of("kafka")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "SASL_PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    cluster_id = interpolate(env["CLUSTER_ID"], {})
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id), "CLUSTER_ID is a base64 UUID"
    assert "zookeeper" not in yaml.safe_dump(compose()).lower()  # comments aside
    assert all("zookeeper" not in str(s.get("image", "")) for s in compose()["services"].values())
    assert k.get("healthcheck") and k.get("volumes")


def test_postgres() -> None:
    p = svc("postgres")
    assert p["image"] == "postgres:16"
    test = p["healthcheck"]["test"]
    assert "pg_isready" in (" ".join(test) if isinstance(test, list) else test)
    assert p.get("volumes"), "data on a volume"
    assert env_of("postgres")["POSTGRES_PASSWORD"].startswith("${ZJTX_DB_PASSWORD:?")


def test_migration_and_topic_jobs() -> None:
    m, t = svc("migrate"), svc("topics")
    assert m["command"] == ["migrate"] and t["command"] == ["topics"]
    assert m["restart"] == "no" and t["restart"] == "no"
    assert depends("migrate") == {"postgres": "service_healthy"}
    assert depends("topics") == {"kafka": "service_healthy", "kafka-acls": "service_completed_successfully"}
    assert env_of("topics")["ZJTX_KAFKA_SASL_USERNAME"] == "topics"
    assert env_of("migrate")["ZJTX_DATABASE_URL"] == env_of("registry")["ZJTX_DATABASE_URL"]
    assert env_of("topics")["ZJTX_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env_of("kafka")["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "topics come from the catalogue"
    for job in (m, t):
        assert job["build"]["dockerfile"] == "deploy/Dockerfile"
        assert job.get("healthcheck", {}).get("disable") is True


def test_gateway_service() -> None:
    g = svc("gateway")
    assert g["image"].startswith("nginx:")
    assert "8000:8000" in [str(p) for p in g["ports"]]
    assert any(str(v).startswith("./deploy/nginx.conf:/etc/nginx/nginx.conf") for v in g["volumes"])
    assert depends("gateway") == dict.fromkeys(SERVICES, "service_healthy")
    assert g.get("healthcheck") and g.get("restart") == "unless-stopped"
    # Only the gateway is published; services stay on the internal network.
    for name in SERVICES:
        assert not svc(name).get("ports"), f"{name} should not publish ports"


# --- broker: SASL/SCRAM and ACLs ----------------------------------------------------------------------------

AGENCY = "agency-lishui"  # the example agency compose sets up (docs/agencies.md)


def test_kafka_sasl_listener_and_authorizer() -> None:
    k, env = svc("kafka"), env_of("kafka")
    listeners = dict(reversed(item.split("://", 1)) for item in env["KAFKA_LISTENERS"].split(","))
    assert listeners == {":9092": "SASL_PLAINTEXT", ":9093": "CONTROLLER"}
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "SASL_PLAINTEXT://kafka:9092"
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert protocols == {"CONTROLLER": "SASL_PLAINTEXT", "SASL_PLAINTEXT": "SASL_PLAINTEXT"}, "no PLAINTEXT listener"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "SASL_PLAINTEXT"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == "SCRAM-SHA-512"
    assert env["KAFKA_LISTENER_NAME_CONTROLLER_SASL_ENABLED_MECHANISMS"] == "PLAIN"
    assert env["KAFKA_SASL_MECHANISM_CONTROLLER_PROTOCOL"] == "PLAIN"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_SUPER_USERS"] == "User:admin", "only admin is super, never User:ANONYMOUS"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["ZJTX_KAFKA_ADMIN_PASSWORD"].startswith("${ZJTX_KAFKA_ADMIN_PASSWORD:?")
    assert k["command"] == ["/bin/bash", "/zjtx/kafka/start.sh"]
    assert "./deploy/kafka:/zjtx/kafka:ro" in k["volumes"]
    assert "--command-config /tmp/zjtx-kafka/admin.properties" in " ".join(k["healthcheck"]["test"])


def test_one_principal_per_service() -> None:
    users = {name: env_of(name)["ZJTX_KAFKA_SASL_USERNAME"] for name in SERVICES}
    assert users == {name: name for name in SERVICES}
    passwords = [env_of(name)["ZJTX_KAFKA_SASL_PASSWORD"] for name in SERVICES]
    assert len(set(passwords)) == len(SERVICES), "each service its own password"
    jobs = env_of("kafka-acls")
    for principal in [*SERVICES, "topics", AGENCY]:
        assert jobs[password_var(principal)].startswith("${" + password_var(principal) + ":?")
    acls = svc("kafka-acls")
    assert acls["image"] == svc("kafka")["image"] and acls["restart"] == "no"
    assert acls["command"] == ["/bin/bash", "/zjtx/kafka/acls.sh"]
    assert depends("kafka-acls") == {"kafka": "service_healthy"}
    assert jobs["ZJTX_KAFKA_BOOTSTRAP"] == "kafka:9092"


Grant = tuple[str, str, str, str, str]  # (principal, resource type, pattern type, resource name, operation)


def _stand_in_tools(tmp_path: Path) -> tuple[Path, Path]:
    """A KAFKA_HOME whose bin/ tools append their arguments (tab-separated, one call a line) to a log."""
    home, log = tmp_path / "kafka", tmp_path / "calls.log"
    (home / "bin").mkdir(parents=True, exist_ok=True)
    for tool in ("kafka-acls.sh", "kafka-configs.sh", "kafka-storage.sh"):
        script = home / "bin" / tool
        if script.exists():  # set up already (a test may have extended it)
            continue
        script.write_text(f'#!/bin/sh\n{{ printf "%s" {tool}; printf "\\t%s" "$@"; echo; }} >> "{log}"\n')
        script.chmod(0o755)
    return home, log


def _calls(log: Path, tool: str) -> list[list[str]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split("\t")[1:] for line in lines if line.split("\t")[0] == tool]


def _options(args: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        key = args[i]
        assert key.startswith("--"), args
        if key in ("--add", "--alter"):
            out.setdefault(key, []).append("")
            i += 1
        else:
            out.setdefault(key, []).append(args[i + 1])
            i += 2
    return out


def _run_acls(tmp_path: Path, script: Path = KAFKA_ACLS, **extra: str) -> subprocess.CompletedProcess[str]:
    home, _ = _stand_in_tools(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "KAFKA_HOME": str(home), **given_secrets(), **extra}
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)


@cache
def acl_job_result() -> tuple[set[Grant], dict[str, str]]:
    """What deploy/kafka/acls.sh does, run with stand-in tools: (the grants, principal → SCRAM password)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return _acl_job_result(Path(tmp))


def _acl_job_result(tmp: Path, script: Path = KAFKA_ACLS, **extra: str) -> tuple[set[Grant], dict[str, str]]:
    out = _run_acls(tmp, script, **extra)
    assert out.returncode == 0, out.stderr
    log = tmp / "calls.log"
    grants: set[Grant] = set()
    for args in _calls(log, "kafka-acls.sh"):
        opts = _options(args)
        assert opts["--bootstrap-server"] == ["kafka:9092"] and "--add" in opts
        assert opts["--command-config"], "as admin"
        (principal,) = opts["--allow-principal"]
        assert principal.startswith("User:")
        (pattern,) = opts["--resource-pattern-type"]
        for kind in ("topic", "group"):
            for name in opts.get(f"--{kind}", []):
                for op in opts["--operation"]:
                    grants.add((principal.removeprefix("User:"), kind, pattern, name, op))
        assert set(opts) <= {"--bootstrap-server", "--command-config", "--add", "--allow-principal",
                             "--resource-pattern-type", "--operation", "--topic", "--group"}, opts
    users: dict[str, str] = {}
    for args in _calls(log, "kafka-configs.sh"):
        opts = _options(args)
        assert opts["--entity-type"] == ["users"] and "--alter" in opts
        m = re.fullmatch(r"SCRAM-SHA-512=\[iterations=(\d+),password=(.+)\]", opts["--add-config"][0])
        assert m and int(m[1]) >= 4096
        users[opts["--entity-name"][0]] = m[2]
    return grants, users


def expected_service_grants() -> set[Grant]:
    """From the code: each service writes its topic (if it publishes), reads what its ServiceSpec subscribes to,
    dead-letters into those topics' DLQs, consumes in group zjtx-<service>, and a replayable service (all but the
    monitor, services/monitor/app/replay.py) creates, writes and reads its replay topics in its replay groups."""
    grants: set[Grant] = set()
    for name in SERVICES:
        spec = load_attribute(f"{descriptor(name).package}.main:spec")
        assert spec.name == name
        if descriptor(name).publishes:
            grants.add((name, "topic", "literal", topic_of(name), "Write"))
        for topic in spec.subscribe:
            grants.add((name, "topic", "literal", topic, "Read"))
            grants.add((name, "topic", "literal", dlq_of(topic), "Write"))
        grants.add((name, "group", "literal", f"zjtx-{name}", "Read"))
        if name != "monitor":
            for op in ("Create", "Write", "Read"):
                grants.add((name, "topic", "prefixed", replay_topic(name, ""), op))
            grants.add((name, "group", "prefixed", f"zjtx-{name}-replay-", "Read"))
    return grants


def test_acl_job_grants_each_service_exactly_its_topics() -> None:
    grants, _ = acl_job_result()
    got = {g for g in grants if g[0] in SERVICES}
    expected = expected_service_grants()
    assert got == expected, f"missing: {sorted(expected - got)}\nextra: {sorted(got - expected)}"
    # The topics job creates and describes the declared topics, nothing else.
    assert {g for g in grants if g[0] == "topics"} == {
        ("topics", "topic", "literal", t, op) for t in ALL_TOPICS for op in ("Create", "Describe")
    }
    assert {g[0] for g in grants} - {*SERVICES, "topics"} == {AGENCY}, "no grant to anyone else (admin is super)"


def _agency_rules(grants: set[Grant], agency: str) -> None:
    """An agency reads (topics it is granted, in groups agency-<name>…) and may send only the inbound feed."""
    mine = {g for g in grants if g[0] == agency}
    assert mine
    for _, kind, pattern, name, op in mine:
        if kind == "group":
            assert (pattern, name, op) == ("prefixed", agency, "Read")
        elif op == "Write":
            assert (pattern, name) == ("literal", topic_of("agency")), "writes only its feed"
        else:
            assert (pattern, op) == ("literal", "Read") and name in ALL_TOPICS, (name, op)


def test_agency_principal_reads_only_its_granted_topics() -> None:
    grants, _ = acl_job_result()
    assert {g for g in grants if g[0] == AGENCY} == {
        (AGENCY, "topic", "literal", topic_of("registry"), "Read"),
        (AGENCY, "topic", "literal", topic_of("evaluation"), "Read"),
        (AGENCY, "group", "prefixed", AGENCY, "Read"),
        (AGENCY, "topic", "literal", topic_of("agency"), "Write"),  # its inbound feed
    }
    # The example consumer's group for `--name lishui-scjg` is covered by the prefix.
    assert "agency-lishui-scjg".startswith(AGENCY)
    _agency_rules(grants, AGENCY)


def test_adding_an_agency_as_docs_agencies_md_says(tmp_path: Path) -> None:
    """The lines docs/agencies.md tells an operator to add to acls.sh work and give a read-only agency."""
    doc = (ROOT / "docs" / "agencies.md").read_text()
    snippet = re.search(r"\*\*Adding an agency\*\*.*?```bash\n(.*?)```", doc, re.S)
    assert snippet and "user agency-hangzhou" in snippet[1]
    script = tmp_path / "acls.sh"
    body = KAFKA_ACLS.read_text()
    script.write_text(body.replace('echo "kafka-acls:', snippet[1] + 'echo "kafka-acls:'))
    var = password_var("agency-hangzhou")
    grants, users = _acl_job_result(tmp_path / "run", script, **{var: "hangzhou-0123456789abcdef"})
    assert users["agency-hangzhou"] == "hangzhou-0123456789abcdef"
    assert (("agency-hangzhou", "topic", "literal", topic_of("registry"), "Read")) in grants
    _agency_rules(grants, "agency-hangzhou")
    (tmp_path / "none").mkdir()
    assert _run_acls(tmp_path / "none", script).returncode != 0, "its password is required"


def test_acl_job_sets_every_principal_password_from_env() -> None:
    _, users = acl_job_result()
    given = given_secrets()
    assert users == {p: given[password_var(p)] for p in [*SERVICES, "topics", AGENCY]}


def test_acl_job_refuses_missing_or_weak_passwords(tmp_path: Path) -> None:
    missing = _run_acls(tmp_path / "a", ZJTX_KAFKA_FINANCE_PASSWORD="")
    assert missing.returncode != 0 and "ZJTX_KAFKA_FINANCE_PASSWORD" in missing.stderr
    weak = _run_acls(tmp_path / "b", ZJTX_KAFKA_MONITOR_PASSWORD="abc],x=[y")
    assert weak.returncode != 0 and "password of monitor" in weak.stderr


def _run_start(tmp_path: Path, **extra: str) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    home, log = _stand_in_tools(tmp_path)
    run = tmp_path / "run"
    run.write_text('#!/bin/sh\necho "image run with KAFKA_OPTS=$KAFKA_OPTS"\n')
    run.chmod(0o755)
    data, secrets = tmp_path / "data", tmp_path / "secrets"
    data.mkdir(exist_ok=True)
    env = {k: interpolate(v, given_secrets()) for k, v in env_of("kafka").items()}
    env.update(PATH="/usr/bin:/bin", KAFKA_HOME=str(home), KAFKA_DOCKER_RUN=str(run), KAFKA_LOG_DIRS=str(data),
               ZJTX_KAFKA_SECRETS=str(secrets), **extra)
    out = subprocess.run(["bash", str(KAFKA_START)], env=env, capture_output=True, text=True, timeout=30)
    return out, log, secrets


def test_kafka_start_formats_with_the_admin_scram_user_then_runs_the_image(tmp_path: Path) -> None:
    password = given_secrets()["ZJTX_KAFKA_ADMIN_PASSWORD"]
    out, log, secrets = _run_start(tmp_path)
    assert out.returncode == 0, out.stderr
    (fmt,) = _calls(log, "kafka-storage.sh")
    assert fmt[0] == "format"
    opts = _options(fmt[1:])
    assert opts["--cluster-id"] == [interpolate(env_of("kafka")["CLUSTER_ID"], {})]
    assert opts["--config"] == [f"{secrets}/format.properties"]
    assert not (secrets / "format.properties").exists(), "removed once formatted"
    assert opts["--add-scram"] == [f"SCRAM-SHA-512=[name=admin,password={password}]"]
    assert f"KAFKA_OPTS=-Djava.security.auth.login.config={secrets}/jaas.conf" in out.stdout
    jaas = (secrets / "jaas.conf").read_text()
    assert f'user_admin="{password}"' in jaas and "ScramLoginModule" in jaas and "PlainLoginModule" in jaas
    admin = (secrets / "admin.properties").read_text()
    assert "security.protocol=SASL_PLAINTEXT" in admin and f'password="{password}"' in admin
    assert oct((secrets / "jaas.conf").stat().st_mode & 0o777) == "0o600"
    # Already formatted: straight to the image's run.
    (tmp_path / "data" / "meta.properties").write_text("cluster.id=x\n")
    log.unlink()
    again, log, _ = _run_start(tmp_path)
    assert again.returncode == 0 and not _calls(log, "kafka-storage.sh")


def test_kafka_start_renders_the_properties_like_the_image(tmp_path: Path) -> None:
    home, _ = _stand_in_tools(tmp_path)
    # Let the stand-in storage tool keep the properties it was given.
    tool = home / "bin" / "kafka-storage.sh"
    tool.write_text(tool.read_text() + 'while [ $# -gt 0 ]; do [ "$1" = --config ] && cp "$2" "' + str(tmp_path)
                    + '/format.properties"; shift; done\n')
    out, _, _ = _run_start(tmp_path, KAFKA_HEAP_OPTS="-Xmx1G")
    assert out.returncode == 0, out.stderr
    props = dict(line.split("=", 1) for line in (tmp_path / "format.properties").read_text().splitlines())
    assert props["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"
    assert props["process.roles"] == "broker,controller" and props["node.id"] == "1"
    assert "heap.opts" not in props and not any("password" in k for k in props), "no JVM setting, no secret"


def test_kafka_start_refuses_a_password_that_breaks_jaas(tmp_path: Path) -> None:
    out, log, _ = _run_start(tmp_path, ZJTX_KAFKA_ADMIN_PASSWORD='x"; user_evil="x')
    assert out.returncode != 0 and "ZJTX_KAFKA_ADMIN_PASSWORD" in out.stderr
    assert not _calls(log, "kafka-storage.sh")


# --- Dockerfile and entrypoint -------------------------------------------------------------------------------


def test_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert re.search(r"^RUN pip install \.", text, re.M)
    user = [ln for ln in lines if ln.startswith("USER ")]
    assert user and not user[-1].split()[1].startswith(("root", "0")), "runs as a non-root user"
    assert "ENTRYPOINT" in text and "zjtx-entrypoint" in text
    for copied in ("shared", "services", "pyproject.toml"):
        assert copied in text
    assert "HEALTHCHECK" in text and "/healthz" in text


@pytest.fixture
def fake_zjtx(tmp_path: Path) -> Path:
    fake = tmp_path / "zjtx"
    fake.write_text('#!/bin/sh\necho "zjtx $*"\n')
    fake.chmod(0o755)
    return tmp_path


def _entry(fake_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": f"{fake_dir}:/usr/bin:/bin"}
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args], env={**base, **env}, capture_output=True, text=True, timeout=10
    )


def test_entrypoint_serves_the_service_named_by_env(fake_zjtx: Path) -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
    out = _entry(fake_zjtx, ZJTX_SERVICE="finance", ZJTX_PORT="8003")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "zjtx serve finance --host 0.0.0.0 --port 8003"
    assert _entry(fake_zjtx, "migrate").stdout.strip() == "zjtx migrate"
    assert _entry(fake_zjtx, "token", "--role", "admin", "--region", "330000").stdout.strip() == (
        "zjtx token --role admin --region 330000"
    )
    missing = _entry(fake_zjtx)
    assert missing.returncode != 0 and "ZJTX_SERVICE" in missing.stderr
    for name in SERVICES:  # every compose service's container starts
        served = _entry(fake_zjtx, ZJTX_SERVICE=name, ZJTX_PORT=str(descriptor(name).port))
        assert served.returncode == 0 and served.stdout.split()[:3] == ["zjtx", "serve", name], served.stderr
    assert _entry(fake_zjtx, ZJTX_SERVICE="billing").returncode != 0


# --- nginx gateway routing -----------------------------------------------------------------------------------


@cache
def nginx_routes() -> tuple[dict[str, str], list[tuple[re.Pattern[str], str]]]:
    """(upstream name → "host:port", [(regex location, upstream)] in file order)."""
    text = re.sub(r"#[^\n]*", "", NGINX.read_text())
    upstreams = {
        m[1]: m[2] for m in re.finditer(r"upstream\s+(\w+)\s*\{[^}]*?server\s+([\w.-]+:\d+)", text)
    }
    locations: list[tuple[re.Pattern[str], str]] = []
    for m in re.finditer(r"location\s+~\s+(\S+)\s*\{([^}]*)\}", text):
        target = re.search(r"proxy_pass\s+http://([\w$]+)", m[2])
        if target and m[1].startswith("^/api/"):
            locations.append((re.compile(m[1]), target[1]))
    return upstreams, locations


def route_to(path: str) -> str | None:
    """The upstream nginx picks for ``path`` (first matching regex location), or None (gateway 404)."""
    _, locations = nginx_routes()
    for pattern, upstream in locations:
        if pattern.search(path):
            return upstream
    return None


def test_upstreams_point_at_the_compose_services() -> None:
    upstreams, locations = nginx_routes()
    assert upstreams == {name: f"{name}:{descriptor(name).port}" for name in SERVICES}
    assert locations, "no /api/ locations parsed"
    assert {u for _, u in locations} == set(SERVICES)
    assert re.search(r"listen\s+8000;", NGINX.read_text())


@pytest.mark.parametrize(
    ("path", "owner"),
    [
        ("/api/v1/regions", "registry"),
        ("/api/v1/regions/330106", "registry"),
        ("/api/v1/enterprises", "registry"),
        ("/api/v1/enterprises/91330106MA2XXXXX1X", "registry"),
        ("/api/v1/enterprises/91330106MA2XXXXX1X/indicators/2024", "registry"),
        ("/api/v1/enterprises/91330106MA2XXXXX1X/evaluations", "evaluation"),
        ("/api/v1/enterprises/91330106MA2XXXXX1X/recognitions", "evaluation"),
        ("/api/v1/enterprises/91330106MA2XXXXX1X/entitlements", "finance"),
        ("/api/v1/enterprises/91330106MA2XXXXX1X/commissioner", "notification"),
        ("/api/v1/indicators", "registry"),
        ("/api/v1/pools/city/330100", "registry"),
        ("/api/v1/targets", "registry"),
        ("/api/v1/imports", "registry"),
        ("/api/v1/jobs/5d1c", "registry"),
        ("/api/v1/evaluations/preview", "evaluation"),
        ("/api/v1/rulesets", "evaluation"),
        ("/api/v1/applications", "evaluation"),
        ("/api/v1/recognitions/r1", "evaluation"),
        ("/api/v1/simulations", "evaluation"),
        ("/api/v1/policies", "finance"),
        ("/api/v1/budgets", "finance"),
        ("/api/v1/entitlements", "finance"),
        ("/api/v1/disbursements", "finance"),
        ("/api/v1/ledger", "finance"),
        ("/api/v1/reconciliations", "finance"),
        ("/api/v1/commissioners", "notification"),
        ("/api/v1/notifications", "notification"),
        ("/api/v1/feed", "monitor"),
        ("/api/v1/feed/stream", "monitor"),
        ("/api/v1/monitor/attainment", "monitor"),
        ("/api/v1/monitor/reports/annual", "monitor"),
        ("/api/v1/regionsX", None),
        ("/api/v1/unknown", None),
    ],
)
def test_gateway_routing_table(path: str, owner: str | None) -> None:
    assert route_to(path) == owner


def _sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X1", path)


@cache
def service_routes() -> dict[str, list[str]]:
    """Every ``/api/v1/…`` path each service's app serves (from the real routers)."""
    out: dict[str, list[str]] = {}
    for name in SERVICES:
        module = importlib.import_module(f"services.{name}.main")
        app = module.build_app(Settings(service=name, run_relay=False, run_consumer=False))
        paths = app.openapi()["paths"]  # the public contract; include_router nests app.routes in new FastAPI
        out[name] = sorted(p for p in paths if p.startswith("/api/v1/") and not p.startswith(BACKBONE_PATHS)
                           and not p.startswith(DEV_PATHS))
    return out


# Dev-stack-only routes (the evaluation's decision-date clock; refused with ZJTX_ENV=prod): the production
# gateway does not route them at all.
DEV_PATHS = ("/api/v1/dev/",)


def test_the_gateway_does_not_route_dev_only_paths() -> None:
    served = [p for name in SERVICES for p in _all_paths(name) if p.startswith(DEV_PATHS)]
    assert served, "the dev clock exists (evaluation)"
    assert all(route_to(_sample(p)) is None for p in served)


def _all_paths(name: str) -> list[str]:
    module = importlib.import_module(f"services.{name}.main")
    return list(module.build_app(Settings(service=name, run_relay=False, run_consumer=False)).openapi()["paths"])


# Routes every service serves about its own backbone (shared/events/http.py): behind the gateway they are
# reached under the service's name, /<service>/api/v1/contracts/<type>, not by resource prefix.
BACKBONE_PATHS = ("/api/v1/contracts", "/api/v1/admin/outbox")


@pytest.mark.parametrize("name", SERVICES)
def test_backbone_routes_are_reached_under_the_service_name(name: str) -> None:
    text = re.sub(r"#[^\n]*", "", NGINX.read_text())
    found = [
        (re.compile(m[1]), m[2]) for m in re.finditer(r"location\s+~\s+(\S+)\s*\{\s*proxy_pass\s+(\S+);", text)
        if m[1].startswith("^/(")
    ]
    module = importlib.import_module(f"services.{name}.main")
    app = module.build_app(Settings(service=name, run_relay=False, run_consumer=False))
    backbone = [p for p in app.openapi()["paths"] if p.startswith(BACKBONE_PATHS)]
    assert backbone, "every service serves its contracts"
    for path in backbone:
        sample = f"/{name}{_sample(path)}"
        hits = [(pattern, target) for pattern, target in found if pattern.search(sample)]
        assert hits, f"gateway does not route {sample}"
        pattern, target = hits[0]
        match = pattern.search(sample)
        assert match is not None
        second = match[2] if match.lastindex and match.lastindex >= 2 else ""
        resolved = target.replace("$1", match[1]).replace("$2", second)
        assert resolved.startswith(f"http://{name}{_sample(path)}"), (sample, resolved)


def test_every_service_exposes_api_routes() -> None:
    routes = service_routes()
    assert all(routes[name] for name in SERVICES), {n: len(r) for n, r in routes.items()}


def test_every_service_prefix_reaches_a_defined_upstream() -> None:
    upstreams, _ = nginx_routes()
    unrouted = [
        f"{name}: {path}" for name, paths in service_routes().items() for path in paths
        if route_to(_sample(path)) not in upstreams
    ]
    assert not unrouted, "paths the gateway does not route:\n" + "\n".join(unrouted)


def test_gateway_sends_every_route_to_the_service_that_serves_it() -> None:
    owners: dict[str, list[str]] = {}
    for name, paths in service_routes().items():
        for path in paths:
            owners.setdefault(_sample(path), []).append(name)
    problems = []
    for sample, names in sorted(owners.items()):
        if len(names) > 1:
            problems.append(f"{sample}: served by {' and '.join(names)} (the gateway can reach only one)")
        elif route_to(sample) != names[0]:
            problems.append(f"{sample}: served by {names[0]}, gateway sends it to {route_to(sample)}")
    assert not problems, "gateway routing conflicts:\n" + "\n".join(problems)

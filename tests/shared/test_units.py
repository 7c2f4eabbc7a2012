"""Pure unit tests of the backbone: jurisdiction, tokens, the CloudEvents envelope, settings."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from shared.auth import (
    AuthError,
    Principal,
    Role,
    city_of,
    decode_token,
    issue_token,
    province_of,
    region_covers,
    region_level,
)
from shared.events.envelope import CloudEvent, EnvelopeError, EventPayload, EventReader, dumps
from shared.events.outbox import outbox_row
from shared.settings import DEV_JWT_SECRET, Settings, normalise_database_url

# --- jurisdiction -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("territory", "code", "covered"),
    [
        ("330000", "330000", True),
        ("330000", "330100", True),
        ("330000", "330106", True),
        ("330000", "331082", True),
        ("330000", "320106", False),
        ("330100", "330100", True),
        ("330100", "330106", True),
        ("330100", "330122", True),
        ("330100", "330206", False),
        ("330100", "330000", False),  # a city does not cover its province
        ("330106", "330106", True),
        ("330106", "330108", False),
        ("330106", "330100", False),  # a county does not cover its city
        ("330000", "33010", False),  # malformed codes never match
        ("33000", "330106", False),
        ("330100", "", False),
    ],
)
def test_region_covers(territory: str, code: str, covered: bool) -> None:
    assert region_covers(territory, code) is covered


def test_region_levels_and_parents() -> None:
    assert [region_level(c) for c in ("330000", "330100", "330106")] == ["province", "city", "county"]
    assert city_of("330106") == "330100"
    assert province_of("330106") == "330000"


def test_principal_visibility() -> None:
    uscc = "91330106MA2XXXXX1X"
    ent = Principal(sub="e", role=Role.ENTERPRISE, region="330106", uscc=uscc)
    assert ent.can_see_enterprise(uscc, "330106")
    assert not ent.can_see_enterprise("91330106MA2YYYYY2Y", "330106"), "an enterprise sees only itself"
    city = Principal(sub="c", role=Role.CITY, region="330100")
    assert city.can_see_enterprise(uscc, "330106")
    assert not city.can_see_enterprise(uscc, "330206")
    assert not city.covers_region(None)
    admin = Principal(sub="a", role=Role.ADMIN, region="330000")
    assert admin.covers_region("110105")
    assert city.is_official and not ent.is_official and city.level == "city"


# --- tokens -------------------------------------------------------------------------------------------------


def test_token_round_trip_and_rejections() -> None:
    s = Settings(env="test")
    p = decode_token(s, issue_token(s, role="enterprise", region="330106", uscc="91330106MA2XXXXX1X", sub="李四"))
    assert p == Principal(sub="李四", role=Role.ENTERPRISE, region="330106", uscc="91330106MA2XXXXX1X")
    with pytest.raises(AuthError, match="过期"):
        decode_token(s, issue_token(s, role="admin", region="330000", ttl=-5))
    other = Settings(env="test", jwt_secret="another-secret-that-is-long-enough-0123456789")
    with pytest.raises(AuthError):
        decode_token(other, issue_token(s, role="admin", region="330000"))
    # An HS256 token must not pass as RS256 (algorithm confusion) and vice versa.
    with pytest.raises(AuthError):
        decode_token(
            Settings(env="test", jwt_algorithm="RS256", jwks_url=None), issue_token(s, role="admin", region="330000")
        )
    aud = Settings(env="test", jwt_audience="zjtx")
    assert decode_token(aud, issue_token(aud, role="admin", region="330000")).role == Role.ADMIN
    with pytest.raises(AuthError):
        decode_token(aud, issue_token(s, role="admin", region="330000"))  # no audience claim


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", pem
    finally:
        server.shutdown()
        server.server_close()


def test_rs256_with_jwks(jwks_server: tuple[str, str]) -> None:
    url, pem = jwks_server
    s = Settings(env="prod", jwt_algorithm="RS256", jwks_url=url)
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": "王五", "role": "province_official", "region": "330000", "exp": now + 600}
    token = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": "k1"})
    assert decode_token(s, token).sub == "王五"
    # ``zjtx token --private-key`` mints tokens without ``kid``: accepted while the JWKS holds one key.
    assert decode_token(s, issue_token(s, role="city_official", region="330100", private_key=pem)).region == "330100"
    forged = jwt.encode(claims, DEV_JWT_SECRET, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(AuthError):
        decode_token(s, forged)


# --- envelope -----------------------------------------------------------------------------------------------


def _event(**overrides: object) -> CloudEvent:
    base: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "source": "/zjtx/registry",
        "type": "zjtx.registry.enterprise.registered.v1",
        "subject": "91330106MA2XXXXX1X",
        "time": datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
        "dataschema": "urn:zjtx:schema:zjtx.registry.enterprise.registered.v1",
        "regioncode": "330106",
        "correlationid": "req-1",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "data": {"uscc": "91330106MA2XXXXX1X", "name": "杭州某某科技有限公司", "amount": "500000.00"},
    }
    base.update(overrides)
    return CloudEvent.model_validate(base)


def test_envelope_round_trip() -> None:
    ev = _event()
    headers = ev.kafka_headers()
    names = [k for k, _ in headers]
    assert "content-type" in names
    attrs = ("id", "source", "type", "specversion", "subject", "time", "regioncode", "correlationid", "traceparent")
    for attr in attrs:
        assert f"ce_{attr}" in names
    back = CloudEvent.from_kafka(headers, ev.kafka_value())
    assert back == ev
    assert "杭州".encode() in ev.kafka_value(), "Chinese stays readable UTF-8, not \\u escapes"


def test_envelope_optional_attributes_and_unknown_extensions() -> None:
    ev = _event(regioncode=None, correlationid=None, traceparent=None, dataschema=None)
    headers = ev.kafka_headers()
    assert not any(k in ("ce_regioncode", "ce_traceparent") for k, _ in headers)
    assert CloudEvent.from_kafka(headers, ev.kafka_value()) == ev
    # CloudEvents lets producers add extension attributes; a tolerant consumer ignores unknown ones.
    extended = [*headers, ("ce_partitionkey", b"x"), ("x-other", b"y")]
    assert CloudEvent.from_kafka(extended, ev.kafka_value()) == ev


@pytest.mark.parametrize(
    ("headers", "value", "message"),
    [
        ([("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t")], b"{}", "missing CloudEvents attributes: subject"),
        ([], b"{}", "missing"),
        (None, b"{}", "missing"),
        ("full", b"{oops", "not JSON"),
        ("full", b"[1, 2]", "JSON object"),
        ("full", None, "not JSON"),
        ("full", b"\xff\xfe", "not JSON"),
        ([*(("ce_" + k, v) for k, v in (("id", b"1"), ("source", b"/s"), ("type", b"t"), ("subject", b"u"))),
          ("ce_specversion", b"0.3")], b"{}", "specversion"),
        ([*(("ce_" + k, v) for k, v in (("id", b"1"), ("source", b"/s"), ("type", b"t"), ("subject", b"u"))),
          ("ce_time", b"yesterday")], b"{}", "invalid envelope"),
        ([("ce_id", b"\xff"), ("ce_source", b"/s"), ("ce_type", b"t"), ("ce_subject", b"u")], b"{}", "UTF-8"),
    ],
)
def test_envelope_rejects(headers: object, value: bytes | None, message: str) -> None:
    if headers == "full":
        headers = _event().kafka_headers()
    with pytest.raises(EnvelopeError, match=message):
        CloudEvent.from_kafka(headers, value)  # type: ignore[arg-type]


def test_payload_models_forbid_on_produce_and_ignore_on_consume() -> None:
    class Produced(EventPayload):
        uscc: str
        amount: Decimal

    class Consumed(EventReader):
        uscc: str

    with pytest.raises(ValidationError):
        Produced.model_validate({"uscc": "x", "amount": "1.00", "tier": "国家级"})
    assert Consumed.model_validate({"uscc": "x", "future_field": 1}).uscc == "x"


def test_dumps_money_dates_enums_and_models() -> None:
    class Colour(Enum):
        RED = "红"

    class Body(EventPayload):
        amount: Decimal
        day: date

    body = Body(amount=Decimal("1.50"), day=date(2026, 1, 2))
    out = json.loads(dumps({"a": Decimal("500000.00"), "d": date(2026, 1, 2), "c": Colour.RED, "m": body}))
    assert out == {"a": "500000.00", "d": "2026-01-02", "c": "红", "m": {"amount": "1.50", "day": "2026-01-02"}}
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_outbox_row_shape() -> None:
    from sqlalchemy import MetaData

    from shared.backbone import Backbone

    bb = Backbone("registry", MetaData(schema="unit"))
    row = outbox_row(
        bb, "zjtx.registry.enterprise.registered.v1", "91330106MA2XXXXX1X", {"uscc": "u"}, regioncode="330106"
    )
    assert row["topic"] == "zjtx.registry.events" and row["key"] == "91330106MA2XXXXX1X"
    h = row["headers"]
    assert h["ce_type"] == "zjtx.registry.enterprise.registered.v1"
    assert h["ce_source"] == "/zjtx/registry" and h["ce_subject"] == "91330106MA2XXXXX1X"
    assert h["ce_regioncode"] == "330106" and h["ce_id"] == str(row["event_id"])
    with pytest.raises(ValueError, match="not declared"):
        outbox_row(bb, "zjtx.registry.enterprise.teleported.v1", "u", {})


@pytest.mark.parametrize("region", ["330106", None])
def test_outbox_row_headers_are_the_envelopes(region: str | None) -> None:
    """The row's headers, built without a model, are what ``CloudEvent.kafka_headers()`` writes for the same
    event (names, order, texts) and read back as that event."""
    from sqlalchemy import MetaData

    from shared.backbone import Backbone
    from shared.context import correlation_id_var, traceparent_var

    bb = Backbone("registry", MetaData(schema="unit"))
    tokens = [correlation_id_var.set("corr-1"), traceparent_var.set("00-" + "a" * 32 + "-" + "b" * 16 + "-01")]
    try:
        row = outbox_row(bb, "zjtx.registry.enterprise.registered.v1", "91330106MA2XXXXX1X", {"uscc": "u"},
                         regioncode=region)
    finally:
        traceparent_var.reset(tokens[1])
        correlation_id_var.reset(tokens[0])
    headers = [(k, v.encode()) for k, v in row["headers"].items()]
    event = CloudEvent.from_kafka(headers, json.dumps(row["payload"]).encode())
    assert event.kafka_headers() == headers
    assert event.correlationid == "corr-1" and event.regioncode == region and event.traceparent is not None


# --- settings -----------------------------------------------------------------------------------------------


def test_default_secret_refused_in_prod() -> None:
    with pytest.raises(ValidationError, match="默认 JWT 密钥"):
        Settings(env="prod")
    with pytest.raises(ValidationError, match="JWKS"):
        Settings(env="prod", jwt_algorithm="RS256")
    assert Settings(env="prod", jwt_secret="a-real-secret-from-the-vault-0123456789").env == "prod"
    assert Settings(env="dev").jwt_secret == DEV_JWT_SECRET


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZJTX_DATABASE_URL", "postgres://u:p@db:5432/zjtx")
    monkeypatch.setenv("ZJTX_KAFKA_IDEMPOTENCE", "true")
    monkeypatch.setenv("ZJTX_ENV", "prod")
    monkeypatch.setenv("ZJTX_JWT_SECRET", "a-real-secret-from-the-vault-0123456789")
    s = Settings(service="finance")
    assert s.database_url == "postgresql+asyncpg://u:p@db:5432/zjtx"
    assert s.kafka_idempotence is True
    assert s.db_schema == "finance" and s.http_port == 8003
    monkeypatch.setenv("ZJTX_JWT_SECRET", DEV_JWT_SECRET)
    with pytest.raises(ValidationError):
        Settings(service="finance")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u:p@h:5433/db?sslmode=require", "postgresql+asyncpg://u:p@h:5433/db?sslmode=require"),
        ("postgresql+psycopg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://postgres@/zjtx?host=/tmp/pg", "postgresql+asyncpg://postgres@/zjtx?host=/tmp/pg"),
    ],
)
def test_database_url_normalisation(url: str, expected: str) -> None:
    assert normalise_database_url(url) == expected
    assert Settings(database_url=url).database_url == expected


def test_database_url_rejects_other_engines() -> None:
    with pytest.raises(ValueError, match="不支持"):
        normalise_database_url("mysql://u@h/db")
    with pytest.raises(ValidationError):
        Settings(database_url="sqlite:///x.db")


def test_uuid7_is_time_ordered_and_well_formed() -> None:
    import time
    import uuid

    from shared.ids import uuid7

    before = time.time_ns() // 1_000_000
    first = uuid7()
    time.sleep(0.002)
    second = uuid7()
    after = time.time_ns() // 1_000_000
    for u in (first, second):
        assert u.version == 7 and u.variant == uuid.RFC_4122
        assert before <= u.int >> 80 <= after  # the leading 48 bits are the Unix time in milliseconds
    assert first < second and str(first) < str(second)  # later milliseconds sort after, as text too
    assert len({uuid7() for _ in range(10_000)}) == 10_000


def test_uuid7_str_is_the_text_of_a_uuid7() -> None:
    import time
    import uuid

    from shared.ids import uuid7_str

    before = time.time_ns() // 1_000_000
    texts = [uuid7_str() for _ in range(1000)]
    for t in texts:
        u = uuid.UUID(t)
        assert str(u) == t and u.version == 7 and u.variant == uuid.RFC_4122
        assert before <= u.int >> 80 <= time.time_ns() // 1_000_000
    assert len(set(texts)) == 1000


def test_murmur2_partitioning_is_the_default_partitioners() -> None:
    """The relay partitions keys itself: exactly as aiokafka's (and the Java client's) default partitioner."""
    import random

    from aiokafka.partitioner import DefaultPartitioner
    from aiokafka.partitioner import murmur2 as reference

    from shared.events.partitioning import murmur2, partition_of

    rng = random.Random(7)
    keys = [rng.randbytes(n) for n in range(0, 40) for _ in range(25)]
    keys += [f"91{rng.randint(0, 10**16):016d}".encode() for _ in range(500)] + ["统一社会信用代码".encode()]
    for key in keys:
        assert murmur2(key) == reference(key), key
        for n in (1, 3, 4, 12):
            assert partition_of(key, list(range(n))) == DefaultPartitioner()(key, list(range(n)), None), key


def test_uuid7_random_bits_differ_in_a_forked_child() -> None:
    """The random bytes are read from the OS in blocks: a forked child starts a block of its own."""
    import os

    from shared.ids import uuid7_str

    uuid7_str()  # the parent holds an unread block now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next identifiers, to the parent
        os.write(w, "".join(uuid7_str() for _ in range(5)).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r) as f:
        child = f.read()
    mine = "".join(uuid7_str() for _ in range(5))
    # the leading 48 bits are the time; compare the random parts (the same block would give the same ones)
    def random_parts(ids: str) -> set[str]:
        return {ids[i * 36 + 15:i * 36 + 36] for i in range(5)}

    assert random_parts(child).isdisjoint(random_parts(mine))


@pytest.mark.parametrize(
    "time", ["2026-12-02T06:00:00.123456+00:00", "2026-12-02T14:00:00+08:00", "2026-12-02T06:00:00Z", None,
             "2026-12-02T06:00:00", "2026-12-02", "1764655200", "yesterday"],
)
def test_envelope_assembled_directly_equals_the_validated_model(time: str | None) -> None:
    """``from_kafka`` assembles the usual event without validating it again: the same event as the model's
    validation, and any other form of ``time`` left to the model (which accepts or rejects it as before)."""
    from pydantic import ValidationError

    from shared.events.envelope import _assembled

    attrs: dict[str, object] = {"id": "e-1", "source": "/zjtx/evaluation",
                                "type": "zjtx.registry.enterprise.registered.v1", "subject": "u",
                                "datacontenttype": "application/json", "data": {"a": [1, "专"]}}
    if time is not None:
        attrs["time"] = time
    fast = _assembled(dict(attrs))
    try:
        want = CloudEvent.model_validate(attrs)
    except ValidationError:
        assert fast is None
        return
    if fast is None:  # left to the model: only forms other than a date and time with an offset
        assert time is None or time[-6:] not in ("+00:00", "+08:00")
        return
    assert fast == want and fast.model_fields_set == want.model_fields_set
    assert list(fast.__dict__) == list(want.__dict__) and fast.time.isoformat() == want.time.isoformat()


def test_dumps_writes_what_the_standard_library_writes() -> None:
    """Events, outbox rows and audit rows are serialised by orjson: the same text as compact, UTF-8
    ``json.dumps`` with the project's conversions (Decimal as text, dates ISO 8601, models, enums, UUIDs)."""
    import uuid
    from datetime import date, datetime, time, timedelta, timezone
    from decimal import Decimal
    from enum import StrEnum

    from shared.events.envelope import dumps, dumps_text, loads

    class Tier(StrEnum):
        SRDI = "srdi"

    when = datetime(2026, 12, 2, 6, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    data = {"名称": "专精特新 \"小巨人\"\n\t\\", "n": [1, -2, 10**15, True, None, 1.5], "money": Decimal("-12.30"),
            "at": when, "naive": datetime(2026, 1, 1), "day": date(2026, 2, 3), "id": uuid.UUID(int=7),
            "tier": Tier.SRDI, "nested": {"a": {"b": []}}, 3: "int key", "clock": time(9, 30, tzinfo=UTC)}
    plain = {**data, "money": "-12.30", "at": when.isoformat(), "naive": "2026-01-01T00:00:00",
             "clock": "09:30:00+00:00", "day": "2026-02-03", "id": str(uuid.UUID(int=7)), "tier": "srdi"}
    want = json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    assert dumps_text(data) == want and dumps(data) == want.encode()
    assert loads(want) == json.loads(want) and loads(want.encode()) == json.loads(want)


def test_collector_paused_restores_the_collector_as_it_found_it() -> None:
    import gc

    from shared.gc_control import collector_paused

    assert gc.isenabled()
    try:
        with collector_paused():
            assert not gc.isenabled()
            with collector_paused():  # nested: leaves it to the outer pause
                assert not gc.isenabled()
            assert not gc.isenabled()
        assert gc.isenabled()
        with pytest.raises(RuntimeError), collector_paused():
            raise RuntimeError("boom")
        assert gc.isenabled()  # back on after an exception too
        gc.disable()
        with collector_paused():
            pass
        assert not gc.isenabled()  # off before: stays off
    finally:
        gc.enable()


def test_freeze_survivors_collects_then_freezes_what_is_alive() -> None:
    import gc

    from shared.gc_control import freeze_survivors

    class Node:
        def __init__(self) -> None:
            self.me = self  # a reference cycle: only the collector frees it

    import weakref

    before = gc.get_freeze_count()
    garbage = weakref.ref(Node())  # unreachable, in a cycle: only a collection frees it
    kept = [Node()]
    try:
        freeze_survivors()
        assert garbage() is None  # collected, not frozen
        assert gc.get_freeze_count() > before
        assert not any(isinstance(o, Node) for o in gc.get_objects())  # the live one is frozen, not in a generation
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0 and kept

"""Broker security settings reach every aiokafka client the backbone builds (producer, consumer, admin, the relay's
topic guard), and the default stays PLAINTEXT: the test broker and the dev stack are Tansu, which has no SASL."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient

from shared.events.kafka import TopicGuard, make_admin, make_consumer, make_producer, provision_topics
from shared.settings import Settings

SASL = {
    "kafka_security_protocol": "SASL_PLAINTEXT",
    "kafka_sasl_mechanism": "SCRAM-SHA-512",
    "kafka_sasl_username": "registry",
    "kafka_sasl_password": "pw-from-the-vault",
}


def _client(obj: AIOKafkaProducer | AIOKafkaConsumer | AIOKafkaAdminClient) -> AIOKafkaClient:
    """The connection client each aiokafka class wraps (not started: no connection is made)."""
    if isinstance(obj, AIOKafkaProducer):
        return obj.client
    client: AIOKafkaClient = obj._client
    return client


def _security(client: AIOKafkaClient) -> dict[str, Any]:
    return {
        "protocol": client._security_protocol,
        "mechanism": client._sasl_mechanism,
        "username": client._sasl_plain_username,
        "password": client._sasl_plain_password,
        "ssl": client._ssl_context,
    }


async def _all_clients(settings: Settings) -> list[AIOKafkaClient]:
    producer = make_producer(settings)
    consumer = make_consumer(settings, "zjtx-registry")
    admin = make_admin(settings)
    guard = TopicGuard.from_settings(settings)
    guard_admin = AIOKafkaAdminClient(bootstrap_servers=guard.bootstrap, **guard.security)
    return [_client(producer), _client(consumer), _client(admin), _client(guard_admin)]


async def test_sasl_settings_reach_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SASL.items():
        monkeypatch.setenv(f"ZJTX_{key.upper()}", value)
    settings = Settings(service="registry")
    assert "pw-from-the-vault" not in repr(settings), "the password stays out of reprs and logs"
    for client in await _all_clients(settings):
        assert _security(client) == {
            "protocol": "SASL_PLAINTEXT",
            "mechanism": "SCRAM-SHA-512",
            "username": "registry",
            "password": "pw-from-the-vault",
            "ssl": None,
        }


async def test_sasl_ssl_gets_a_context_from_the_ca_file(tmp_path: Path) -> None:
    # A CA file that is not a certificate makes the context fail to load: proof the file is read.
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ssl.SSLError):
        make_producer(Settings(service="registry", **{**SASL, "kafka_security_protocol": "SASL_SSL"},
                               kafka_ssl_cafile=str(bad)))
    settings = Settings(service="registry", **{**SASL, "kafka_security_protocol": "SASL_SSL"})
    for client in await _all_clients(settings):
        assert client._security_protocol == "SASL_SSL"
        assert isinstance(client._ssl_context, ssl.SSLContext)
        assert client._ssl_context.verify_mode == ssl.CERT_REQUIRED and client._ssl_context.check_hostname
        assert client._sasl_plain_username == "registry"


async def test_sasl_without_a_principal_is_refused() -> None:
    settings = Settings(service="registry", kafka_security_protocol="SASL_PLAINTEXT")
    with pytest.raises(ValueError, match="ZJTX_KAFKA_SASL_USERNAME"):
        make_producer(settings)
    with pytest.raises(ValueError, match="ZJTX_KAFKA_SASL_PASSWORD"):
        make_consumer(Settings(service="registry", kafka_security_protocol="SASL_SSL",
                               kafka_sasl_username="registry"), "zjtx-registry")


async def test_default_is_plaintext_and_talks_to_the_test_broker() -> None:
    settings = Settings(service="registry")  # the test environment: ZJTX_KAFKA_* without security settings
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.kafka_sasl_username is None and settings.kafka_sasl_password is None
    for client in await _all_clients(settings):
        assert client._security_protocol == "PLAINTEXT"
        assert client._sasl_plain_username is None and client._ssl_context is None
    # …and those clients work against Tansu.
    await provision_topics(settings, attempts=5)
    producer = make_producer(settings)
    await producer.start()
    try:
        assert await producer.partitions_for("zjtx.registry.events")
    finally:
        await producer.stop()


def _agency_args(**given: Any) -> argparse.Namespace:
    defaults = {"security_protocol": "PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": None,
                "sasl_password": None, "ssl_cafile": None}
    return argparse.Namespace(**{**defaults, **given})


async def test_example_agency_consumer_passes_its_sasl_flags_to_aiokafka(monkeypatch: pytest.MonkeyPatch) -> None:
    from examples import agency_consumer

    monkeypatch.delenv("ZJTX_AGENCY_SASL_PASSWORD", raising=False)
    options = agency_consumer.broker_security(
        _agency_args(security_protocol="SASL_SSL", sasl_username="agency-lishui", sasl_password="from-the-flag")
    )
    client = _client(AIOKafkaConsumer("zjtx.registry.events", bootstrap_servers="kafka:9092", **options))
    assert (client._security_protocol, client._sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (client._sasl_plain_username, client._sasl_plain_password) == ("agency-lishui", "from-the-flag")
    assert isinstance(client._ssl_context, ssl.SSLContext)
    # The password may come from the environment instead of the command line (ps shows arguments).
    monkeypatch.setenv("ZJTX_AGENCY_SASL_PASSWORD", "from-the-env")
    options = agency_consumer.broker_security(
        _agency_args(security_protocol="SASL_PLAINTEXT", sasl_username="agency-lishui")
    )
    assert options == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                       "sasl_plain_username": "agency-lishui", "sasl_plain_password": "from-the-env"}
    assert agency_consumer.broker_security(_agency_args()) == {"security_protocol": "PLAINTEXT"}
    monkeypatch.delenv("ZJTX_AGENCY_SASL_PASSWORD")
    with pytest.raises(SystemExit, match="--sasl-username"):
        agency_consumer.main(["broker", "--bootstrap", "kafka:9092", "--name", "lishui-scjg",
                              "--security-protocol", "SASL_PLAINTEXT", "--sasl-username", "agency-lishui"])


def test_example_agency_producer_passes_its_sasl_flags_to_aiokafka(monkeypatch: pytest.MonkeyPatch) -> None:
    """The producer example takes the consumer's security flags (docker-compose's Kafka runs SASL/SCRAM)."""
    from examples import agency_producer

    seen: dict[str, Any] = {}

    async def produce(bootstrap: str, events: Any, **options: Any) -> list[str]:
        client = _client(AIOKafkaProducer(bootstrap_servers=bootstrap, **options["kafka"]))
        seen.update(protocol=client._security_protocol, mechanism=client._sasl_mechanism,
                    user=client._sasl_plain_username, password=client._sasl_plain_password)
        return []

    monkeypatch.setattr(agency_producer, "produce", produce)
    monkeypatch.setenv("ZJTX_AGENCY_SASL_PASSWORD", "from-the-env")
    assert agency_producer.main(["kafka:9092", "--security-protocol", "SASL_PLAINTEXT",
                                 "--sasl-username", "agency-lishui", "--type", "credit.listed"]) == 0
    assert seen == {"protocol": "SASL_PLAINTEXT", "mechanism": "SCRAM-SHA-512", "user": "agency-lishui",
                    "password": "from-the-env"}
    monkeypatch.delenv("ZJTX_AGENCY_SASL_PASSWORD")
    with pytest.raises(SystemExit, match="--sasl-username"):
        agency_producer.main(["kafka:9092", "--security-protocol", "SASL_PLAINTEXT"])

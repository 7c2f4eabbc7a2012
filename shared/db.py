"""Database access: one async engine per service, each service in its own PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import ColumnElement, MetaData, event, true
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shared.auth import Principal
from shared.events.envelope import dumps_text
from shared.regions import region_tree

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata(schema: str) -> MetaData:
    """Metadata bound to a service schema, with a naming convention so alembic names are stable."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def create_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    """The service's engine. JSON is written compact and as UTF-8 (the outbox's ``json`` columns keep the text as
    written, and the relay publishes it as is).

    No ``pool_pre_ping``: it costs a round trip on every checkout, i.e. every request. A connection the server
    dropped (a PostgreSQL restart) fails its first statement instead; SQLAlchemy then invalidates the whole pool,
    so one request answers 503 with ``Retry-After`` (shared.problems) and the next ones get fresh connections.
    ``pool_recycle`` retires connections before idle timeouts in between (firewalls, poolers) can cut them.
    A connection that cannot be opened at all raises ``DatabaseUnreachable`` (see there)."""
    engine = create_async_engine(database_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False,
                                 pool_recycle=1800, json_serializer=dumps_text)
    event.listen(engine.sync_engine, "do_connect", _connect_or_unreachable)
    return engine


class DatabaseUnreachable(ConnectionError):
    """PostgreSQL could not be reached to open a connection. asyncpg lets the transport's own ``OSError`` through:
    while a server on a unix socket restarts, its socket file is missing and connecting raises
    ``FileNotFoundError``, which is no ``ConnectionError`` and answered 500. As a ``ConnectionError`` it answers
    503 with ``Retry-After`` like every other outage (``shared.problems.database_problem``)."""


def _connect_or_unreachable(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
    try:
        return dialect.connect(*cargs, **cparams)
    except (ConnectionError, TimeoutError):
        raise
    except OSError as exc:
        raise DatabaseUnreachable(f"cannot reach the database: {exc}") from exc


def in_territory(column: Any, territory: Principal | str) -> ColumnElement[bool]:
    """``column`` (a region code column) lies within a principal's territory, or a region code's: ``IN`` the codes
    the region tree puts there (admins: no condition). Never a LIKE pattern built from a claim."""
    if isinstance(territory, Principal):
        codes = territory.region_codes()
        if codes is None:
            return true()
    else:
        codes = region_tree().covered(territory)
    if len(codes) == 1:
        return column == next(iter(codes))  # type: ignore[no-any-return]
    return column.in_(sorted(codes))  # type: ignore[no-any-return]


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session``, inside its transaction (for COPY of bulk rows).

    SQLAlchemy's asyncpg adapter sends ``BEGIN`` lazily, with the first statement it executes itself; work done
    on the driver connection before that would run outside the session's transaction (each statement committing
    on its own), so the transaction is started here when it has not been yet."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    if getattr(adapted, "_transaction", None) is None and getattr(adapted, "isolation_level", "") != "autocommit":
        await adapted._start_transaction()
    return raw.driver_connection


async def insert_or_skip_conflicts(
    raw: Any, plain: Callable[[], Awaitable[T]], skipping: Callable[[], Awaitable[T]]
) -> T:
    """A bulk insert whose rows rarely meet an existing unique key (inbox rows of new events, pool entries):
    ``plain`` (without conflict handling: a COPY or a plain insert) runs in a savepoint on the driver connection
    ``raw``; if a unique key refuses it, the savepoint is rolled back and ``skipping`` (the same insert with
    ``ON CONFLICT DO NOTHING``, a speculative insertion per row and dearer) runs instead."""
    try:
        async with raw.transaction():
            return await plain()
    except asyncpg.UniqueViolationError:
        return await skipping()


def asyncpg_dsn(database_url: str) -> str:
    """The plain DSN asyncpg understands (for LISTEN connections)."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

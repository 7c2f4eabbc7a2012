"""Worker leases that end when the worker's process ends, not when a timer runs out.

A worker that hands work to an outside provider (an SMS gateway, a mail server, the payment gateway) claims its
rows and commits the claim *before* the call, so that two workers never send the same row at once. Who may take
the row over if that worker dies? A time lease alone answers "after N seconds", and a SIGKILLed worker's rows wait
that long (the chaos run: deliveries and a payment still unsent when the system had otherwise drained).

So each worker process holds a :class:`WorkerLease`: a random key, taken as a PostgreSQL session advisory lock
(``pg_try_advisory_lock(LEASE_CLASS, key)``) on a connection of its own, held for as long as the process lives. A
claim writes that key into the row (``claimed_by``). When the process dies (SIGKILL, OOM, a lost host), the server
ends its session and frees the lock at once; :func:`holder_gone` is true for such a row, and the next worker's
claim takes it over immediately. The time lease stays as a backstop for a worker that is alive but stuck.

Taking over is safe only because every send carries an idempotency key derived from the row that the provider
deduplicates on (and the row's outcome is recorded conditionally): a worker that is alive but lost its lease
connection (a PostgreSQL restart) may have its row taken over while its own call is in flight; the provider then
sees the same key twice and acts once. When the lease connection is lost the worker takes a new key; rows claimed
under the old one are taken over like a dead worker's (its own included)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import asyncpg
from sqlalchemy import BigInteger, ColumnElement, cast, column, func, select, table

log = logging.getLogger(__name__)

LEASE_CLASS = 0x7A6A7478  # "zjtx": the first key of every worker-lease advisory lock (two-int form)

_pg_locks = table("pg_locks", column("locktype"), column("database"), column("classid"), column("objid"),
                  column("objsubid"), column("granted"), schema="pg_catalog")
_pg_database = table("pg_database", column("oid"), column("datname"), schema="pg_catalog")


def live_lease_keys() -> Any:
    """``SELECT`` of the lease keys whose worker is alive (its advisory lock is held) in this database."""
    return select(cast(_pg_locks.c.objid, BigInteger)).where(
        _pg_locks.c.locktype == "advisory",
        _pg_locks.c.objsubid == 2,
        cast(_pg_locks.c.classid, BigInteger) == LEASE_CLASS,
        _pg_locks.c.granted,
        _pg_locks.c.database == select(_pg_database.c.oid).where(
            _pg_database.c.datname == func.current_database()).scalar_subquery(),
    )


def holder_gone(claimed_by: ColumnElement[Any]) -> ColumnElement[bool]:
    """The row was claimed under a lease whose worker is gone. A row without a key (claimed by code that holds no
    lease) is never taken over this way, only by its time lease."""
    return claimed_by.is_not(None) & claimed_by.not_in(live_lease_keys())


class WorkerLease:
    """This process's lease (see the module docstring). ``await key()`` before each claim: it (re)takes the lock
    when the process has none or the server dropped its connection; ``close()`` ends it."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._key: int | None = None
        self._lock = asyncio.Lock()

    @property
    def current(self) -> int | None:
        """The key held now (None before the first ``key()`` or once the connection was lost)."""
        return self._key if self._conn is not None and not self._conn.is_closed() else None

    async def key(self) -> int:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed() and self._key is not None:
                return self._key
            await self._drop()
            conn = await asyncpg.connect(self.dsn, server_settings={"application_name": "zjtx-worker-lease"})
            try:
                for _ in range(10):
                    key = 1 + secrets.randbelow(2**31 - 2)
                    if await conn.fetchval("SELECT pg_try_advisory_lock($1::int, $2::int)", LEASE_CLASS, key):
                        self._conn, self._key = conn, key
                        return key
            except BaseException:
                await conn.close(timeout=2)
                raise
            await conn.close(timeout=2)
            raise RuntimeError("no free worker-lease key after 10 tries")

    async def _drop(self) -> None:
        conn, self._conn, self._key = self._conn, None, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=2)
            except Exception:  # the server is gone anyway: its session (and lock) with it
                conn.terminate()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

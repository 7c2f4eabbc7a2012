"""Hot reads at the speed of the database: one prepared statement on a driver connection, JSON built by PostgreSQL.

The reads the 企业码 app makes most (an enterprise, its evaluations, titles, entitlements, notices) need no ORM
session, no transaction and no response model validation: a single ``SELECT`` answers them, and PostgreSQL can
write the JSON itself. :class:`ReadPool` runs such a statement on a small asyncpg pool of the service's own (opened
on first use, idle connections closed after a minute), outside any transaction (one round trip: asyncpg prepares
each statement once per connection and keeps it), and returns what PostgreSQL returned; the route passes the JSON
through as bytes (:func:`json_response`) while its ``response_model`` still documents it in the OpenAPI. A test per
read holds the JSON equal to the response model's serialisation of the same data.

Jurisdiction is the same as everywhere (``shared.db.in_territory``): :func:`scope_of` says which kind of caller
this is and its one parameter, :class:`ScopedRead` keeps one statement per kind with the service's condition for
each (``territory``: ``region_code = ANY(codes)`` from the region tree; ``enterprise``: its own USCC;
``commissioner``: the enterprises assigned to it; ``all``: admins). A row outside answers ``None`` (404).

Failures answer like the session path: a database that cannot be reached raises ``DatabaseUnreachable`` (503 with
``Retry-After`` from ``shared.problems``); a connection the server dropped is retried once on a fresh one (reads
are safe to repeat), and the pool is expired so that the other idle connections are not tried one by one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg
from starlette.responses import Response

from shared.auth import Principal, Role
from shared.db import DatabaseUnreachable

ALL, ENTERPRISE, COMMISSIONER, TERRITORY = "all", "enterprise", "commissioner", "territory"
SCOPE_KINDS = (ALL, ENTERPRISE, COMMISSIONER, TERRITORY)
IDLE_SECONDS = 60.0

_LOST = (asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.AdminShutdownError,
         asyncpg.exceptions.CrashShutdownError, asyncpg.InterfaceError, ConnectionResetError)


async def _keep_state(_: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing. Reads change no session state, so the default reset (a round trip
    with ``RESET ALL; UNLISTEN *; …`` per request) is skipped; asyncpg still rolls back an open transaction."""


class ReadPool:
    """A small asyncpg pool for hot reads (see the module docstring). No I/O until the first read."""

    def __init__(self, dsn: str, max_size: int = 4) -> None:
        self.dsn = dsn
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None

    async def _get(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                pool = asyncpg.create_pool(
                    self.dsn, min_size=0, max_size=self.max_size, reset=_keep_state,
                    max_inactive_connection_lifetime=IDLE_SECONDS,
                    server_settings={"application_name": "zjtx-reads"},
                )
                self._pool = await pool  # min_size 0: connects nothing yet
        return self._pool

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """The rows of ``sql`` with ``args`` (``$1``, ``$2``, …), outside any transaction."""
        pool = await self._get()
        for attempt in (1, 2):
            try:
                async with pool.acquire() as conn:
                    rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
                    return rows
            except _LOST:
                pool.expire_connections()  # the server dropped them (a restart): the idle ones are gone too
                if attempt == 2:
                    raise
            except OSError as exc:  # no server at that address or socket file: 503 (shared.problems)
                raise DatabaseUnreachable(f"cannot reach the database: {exc}") from exc
        raise AssertionError("unreachable")

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """The first row of ``sql`` with ``args``, or None."""
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


# ----------------------------------------------------------------------------------------- jurisdiction


@dataclass(frozen=True, slots=True)
class Scope:
    """Which rows a caller may read: ``kind`` (one of :data:`SCOPE_KINDS`) and its parameter (``None`` for
    ``all``; the USCC, the commissioner's ``sub`` or the territory's region codes)."""

    kind: str
    arg: Any = None


@lru_cache(maxsize=1024)
def _territory(codes: frozenset[str]) -> Scope:  # the tree hands out one frozenset per region: cached by it
    return Scope(TERRITORY, sorted(codes))


def scope_of(principal: Principal) -> Scope:
    """The caller's scope, as ``shared.db.in_territory`` and each service's enterprise visibility have it: an
    enterprise user only itself, a commissioner the enterprises assigned to it, the admin everything, an
    official (or agency) the region codes of its territory."""
    if principal.role == Role.ADMIN:
        return Scope(ALL)
    if principal.role == Role.ENTERPRISE:
        return Scope(ENTERPRISE, principal.uscc or "")
    if principal.role == Role.COMMISSIONER:
        return Scope(COMMISSIONER, principal.sub)
    codes = principal.region_codes()
    return Scope(ALL) if codes is None else _territory(codes)


_PARAM = re.compile(r"\$(\d+)")


class ScopedRead:
    """One read statement, kept as one SQL text per kind of caller.

    ``sql`` holds ``{scope}`` where the caller's condition goes; ``conditions`` maps each kind to its condition,
    written with ``{arg}`` for the scope's parameter (it becomes the statement's last parameter, ``$n+1``). A read
    that needs the caller in more than one place names them: a kind's conditions are then a mapping of placeholder
    names (``{visible}``, ``{known}``, …) to conditions. A kind without conditions is refused: no rows (404)."""

    def __init__(self, sql: str, conditions: Mapping[str, str | Mapping[str, str]]) -> None:
        unknown = set(conditions) - set(SCOPE_KINDS)
        if unknown:
            raise ValueError(f"unknown scope kinds {sorted(unknown)}")
        n = max((int(m) for m in _PARAM.findall(sql)), default=0)
        self.statements: dict[str, str] = {}
        for kind, given in conditions.items():
            parts = {"scope": given} if isinstance(given, str) else dict(given)
            if (kind == ALL) == any("{arg}" in cond for cond in parts.values()):
                raise ValueError(f"the {kind} condition must {'not ' if kind == ALL else ''}use {{arg}}")
            statement = sql
            for name, cond in parts.items():
                if "{" + name + "}" not in statement:
                    raise ValueError(f"no {{{name}}} in the statement")
                statement = statement.replace("{" + name + "}", f"({cond.replace('{arg}', f'${n + 1}')})")
            self.statements[kind] = statement

    async def fetch(self, pool: ReadPool, scope: Scope, *args: Any) -> list[asyncpg.Record]:
        sql = self.statements.get(scope.kind)
        if sql is None:
            return []
        return await pool.fetch(sql, *args) if scope.kind == ALL else await pool.fetch(sql, *args, scope.arg)

    async def fetchrow(self, pool: ReadPool, scope: Scope, *args: Any) -> asyncpg.Record | None:
        rows = await self.fetch(pool, scope, *args)
        return rows[0] if rows else None


# ----------------------------------------------------------------------------------------- SQL and responses


def iso_utc(column: str, zone: str = "Z") -> str:
    """SQL text of a ``timestamptz`` column as pydantic, orjson (``OPT_UTC_Z``, ``zone="Z"``) and
    ``datetime.isoformat()`` (``zone="+00:00"``) write it in UTC: seconds, then ``.ffffff`` only when there are
    microseconds; NULL stays NULL."""
    u = f"({column} AT TIME ZONE 'UTC')"
    return (f"(to_char({u}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_part('microseconds', {u})::bigint "
            f"% 1000000 = 0 THEN '' ELSE to_char({u}, '.US') END || '{zone}')")


def json_response(body: str | bytes, headers: Mapping[str, str] | None = None) -> Response:
    """The JSON PostgreSQL wrote, passed through (the route's ``response_model`` documents it)."""
    return Response(body.encode() if isinstance(body, str) else body, media_type="application/json",
                    headers=dict(headers) if headers else None)

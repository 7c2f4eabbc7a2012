"""One alembic history per service, in the service's own schema (its own ``alembic_version`` table).

A running service needs only the readiness check from here (``script_heads``, ``current_revision``): both work
without importing alembic (~7 MiB per service with mako and pygments); alembic is imported by the commands that
migrate."""

from __future__ import annotations

import ast
import asyncio
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.services import descriptor
from shared.settings import normalise_database_url

if TYPE_CHECKING:
    from alembic.config import Config


def migrations_dir(service: str) -> Path:
    return descriptor(service).migrations


def alembic_config(service: str, database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    cfg.set_main_option("sqlalchemy.url", normalise_database_url(database_url).replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def _revision_ids(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (tuple, list)):
        return tuple(v for v in value if isinstance(v, str))
    return ()


@lru_cache
def script_heads(service: str) -> tuple[str, ...]:
    """The head revisions of the service's history, read once from the ``revision``/``down_revision``
    assignments of its version files (as alembic's ScriptDirectory gives them; tests hold the two equal)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((migrations_dir(service) / "versions").glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target = node.target if isinstance(node, ast.AnnAssign) else (
                node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
            value = getattr(node, "value", None)
            if not isinstance(target, ast.Name) or value is None:
                continue
            if target.id == "revision":
                revisions.update(_revision_ids(ast.literal_eval(value)))
            elif target.id == "down_revision":
                parents.update(_revision_ids(ast.literal_eval(value)))
    return tuple(sorted(revisions - parents))


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(service, database_url), revision)


def run_env(metadata: MetaData, schema: str) -> None:
    """Body of each service's ``migrations/env.py`` (online mode, asyncpg)."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        if type_ == "schema":
            return name == schema
        return True

    def do_run(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=include_name,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    existing = context.config.attributes.get("connection")
    if existing is not None:
        do_run(existing)
    else:
        asyncio.run(main())


def current_revision(connection: Connection, schema: str) -> str | None:
    """The revision the schema is at (None before the first migration), as alembic's MigrationContext reads it."""
    table = f'"{schema}".alembic_version'
    if connection.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar() is None:
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {table}")).scalars().all()
    if len(rows) > 1:
        raise RuntimeError(f"{schema}: several heads in alembic_version: {sorted(rows)}")
    return str(rows[0]) if rows else None


def outbox_relay_deletes(schema: str) -> None:
    """Migration step (2026-12-02): the relay deletes the rows it published instead of marking them, so the
    outbox loses ``published_at`` and the partial index of pending rows (every row left is pending; the primary
    key orders the claim). Rows an earlier relay already marked published are removed first."""
    from alembic import op

    op.execute(text(f"DELETE FROM {schema}.outbox WHERE published_at IS NOT NULL"))
    op.drop_index("ix_outbox_pending", table_name="outbox", schema=schema)
    op.drop_column("outbox", "published_at", schema=schema)


def outbox_relay_marks(schema: str) -> None:
    """Downgrade of :func:`outbox_relay_deletes`."""
    import sqlalchemy as sa
    from alembic import op

    op.add_column("outbox", sa.Column("published_at", sa.DateTime(timezone=True), nullable=True), schema=schema)
    op.create_index("ix_outbox_pending", "outbox", ["seq"], unique=False, schema=schema,
                    postgresql_where=sa.text("published_at IS NULL"))


def outbox_json_columns(schema: str) -> None:
    """Migration step (2026-12-02): the outbox keeps headers and payload as ``json`` (the text as written: the
    relay reads it back once, as text) instead of ``jsonb``, and drops the unique index on ``event_id`` (ids are
    generated UUIDv7s, never supplied, and a published row is deleted: the index guarded nothing)."""
    from alembic import op

    op.drop_constraint("uq_outbox_event_id", "outbox", schema=schema, type_="unique")
    op.execute(text(f"ALTER TABLE {schema}.outbox ALTER COLUMN headers TYPE json USING headers::json, "
                    "ALTER COLUMN payload TYPE json USING payload::json"))


def outbox_jsonb_columns(schema: str) -> None:
    """Downgrade of :func:`outbox_json_columns`."""
    from alembic import op

    op.execute(text(f"ALTER TABLE {schema}.outbox ALTER COLUMN headers TYPE jsonb USING headers::jsonb, "
                    "ALTER COLUMN payload TYPE jsonb USING payload::jsonb"))
    op.create_unique_constraint("uq_outbox_event_id", "outbox", ["event_id"], schema=schema)


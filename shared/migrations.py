"""One alembic history per service, in the service's own schema (its own ``alembic_version`` table)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.services import descriptor
from shared.settings import normalise_database_url


def migrations_dir(service: str) -> Path:
    return descriptor(service).migrations


def alembic_config(service: str, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    cfg.set_main_option("sqlalchemy.url", normalise_database_url(database_url).replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def script_heads(service: str) -> tuple[str, ...]:
    script = ScriptDirectory(str(migrations_dir(service)))
    return tuple(script.get_heads())


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
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
    ctx = MigrationContext.configure(connection, opts={"version_table_schema": schema})
    return ctx.get_current_revision()


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


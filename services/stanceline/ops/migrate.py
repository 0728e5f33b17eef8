"""Running the Alembic migrations from code, safely from several processes at once."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.resources import migrations_dir

_MIGRATION_LOCK = 0x5354_414E_4D49  # replicas starting together migrate one at a time


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def _upgrade(connection: Connection) -> None:
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


class SchemaNotCurrent(Exception):
    """The database's schema is not the one this release reads."""


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations in the package")
    return head


async def require_current(engine: AsyncEngine) -> None:
    """Check, without changing anything, that the schema is at this release's revision.

    For processes that must not run DDL (the API runs as a read-only role): they
    start only once someone with the owner role has run ``stanceline migrate``.
    """
    async with engine.connect() as conn:
        exists = await conn.scalar(sa.text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        found = (
            await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
            if exists
            else None
        )
    expected = head_revision()
    if found != expected:
        at = f"at revision {found}" if found else "not migrated"
        raise SchemaNotCurrent(
            f"the database is {at}; this stanceline reads revision {expected}:"
            " run `stanceline migrate` with the owner role first"
        )

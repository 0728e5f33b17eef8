"""Migrations and models agree, and both ways of migrating work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.store.tables import metadata

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


async def test_models_and_migrations_do_not_drift(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        differences = await conn.run_sync(_differences)
    assert differences == []


def _run(args: list[str], database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STANCELINE_DATABASE_URL": database_url}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_alembic_upgrade_head_and_stanceline_migrate(database_url: str) -> None:
    # The template already carries the schema: both commands must see "at head" and succeed.
    alembic = _run([str(BIN / "alembic"), "upgrade", "head"], database_url)
    assert alembic.returncode == 0, alembic.stderr
    current = _run([str(BIN / "alembic"), "current"], database_url)
    assert "(head)" in current.stdout, current.stdout + current.stderr

    migrate = _run([str(BIN / "stanceline"), "migrate"], database_url)
    assert migrate.returncode == 0, migrate.stderr
    assert "latest revision" in migrate.stderr + migrate.stdout


def test_migrations_build_the_schema_from_nothing(empty_database_url: str) -> None:
    result = _run([str(BIN / "alembic"), "upgrade", "head"], empty_database_url)

    assert result.returncode == 0, result.stderr
    assert "Running upgrade  -> 0001" in result.stderr
    assert "Running upgrade 0001 -> 0002" in result.stderr
    current = _run([str(BIN / "alembic"), "current"], empty_database_url)
    assert "(head)" in current.stdout

"""Alembic environment: async, URL from the caller or STANCELINE_DATABASE_URL.

Code (``stanceline migrate``, the test fixtures) passes an open sync
connection in ``config.attributes["connection"]``; the ``alembic`` command
line builds its own engine from the environment.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from stanceline.settings import database_url_for_asyncpg
from stanceline.store.tables import metadata

config = context.config
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("STANCELINE_DATABASE_URL")
    if not url:
        raise SystemExit("set STANCELINE_DATABASE_URL (or use `stanceline migrate`)")
    engine = create_async_engine(database_url_for_asyncpg(url))
    async with engine.connect() as connection:
        await connection.run_sync(run_with)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run against a database")
elif (connection := config.attributes.get("connection")) is not None:
    run_with(connection)
else:
    asyncio.run(run_online())

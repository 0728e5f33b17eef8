"""Shared fixtures: real Postgres and Redis (see fixtures/servers.py for how they are found).

The schema comes from the real Alembic migrations, run once per session into
a template database; each test gets its own database cloned from it, and
its own stream and group names, so tests never see each other's data.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.ops.migrate import migrate
from stanceline.settings import Settings
from stanceline.store.db import create_engine

if TYPE_CHECKING:
    from fixtures.servers import PostgresServer, RedisServer

pytest_plugins = ["fixtures.servers"]

ROOT = Path(__file__).resolve().parent.parent
FOUNDING = ROOT / "contracts" / "examples" / "founding-example.jsonl"
TEMPLATE = "stanceline_test_template"


def founding_lines() -> list[bytes]:
    return [line for line in FOUNDING.read_bytes().splitlines() if line.strip()]


def founding_events() -> list[dict[str, Any]]:
    return [json.loads(line) for line in founding_lines()]


def _dsn(url: str) -> str:
    """asyncpg's own DSN for a SQLAlchemy URL (unix sockets travel as ?host=)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(server: PostgresServer, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(server.admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def template_database(postgres_server: PostgresServer) -> str:
    await _admin(postgres_server, f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
    await _admin(postgres_server, f"CREATE DATABASE {TEMPLATE}")
    engine = create_engine(postgres_server.url_for(TEMPLATE))
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    return TEMPLATE


@pytest.fixture
async def database_url(
    postgres_server: PostgresServer, template_database: str
) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    await _admin(postgres_server, f"CREATE DATABASE {name} TEMPLATE {template_database}")
    yield postgres_server.url_for(name)
    await _admin(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def empty_database_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A database with no schema at all, for testing the migrations themselves."""
    name = f"e_{uuid.uuid4().hex[:16]}"
    await _admin(postgres_server, f"CREATE DATABASE {name}")
    yield postgres_server.url_for(name)
    await _admin(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def settings(database_url: str, redis_server: RedisServer) -> Settings:
    tag = uuid.uuid4().hex[:10]
    return Settings(
        database_url=database_url,
        redis_url=redis_server.url,
        stream=f"test:{tag}:statements",
        group=f"test-{tag}",
        consumer=f"consumer-{tag}",
        block_ms=20,
        reclaim_idle_ms=500,
    )


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()

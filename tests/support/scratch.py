"""Servers of its own for a command-line trial (the fault harness, the benchmark).

Embedded Postgres and Redis in a fresh temp dir for what is not given; on a given
Postgres, a fresh database that is dropped afterwards. The embedded servers are handed
out so a trial can stop and start them; servers we were given are never restarted.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from conftest import _admin
from fixtures.servers import PostgresServer, _asyncpg_url, traversable_tmpdir
from stanceline.embedded import EmbeddedPostgres, EmbeddedRedis


@dataclass(frozen=True)
class Scratch:
    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None
    """Ours to stop and start, or None on a Postgres we were given."""
    redis: EmbeddedRedis | None


@contextlib.asynccontextmanager
async def scratch_servers(
    prefix: str,
    database_url: str | None,
    redis_url: str | None,
    *,
    redis_persistent: bool = True,
) -> AsyncIterator[Scratch]:
    with traversable_tmpdir(f"stanceline-{prefix}-") as data_dir:
        postgres: EmbeddedPostgres | None = None
        redis_server: EmbeddedRedis | None = None
        created: tuple[PostgresServer, str] | None = None
        try:
            if database_url:
                server = PostgresServer(admin_url=_asyncpg_url(database_url), kind="env")
                name = f"{prefix}_{uuid.uuid4().hex[:12]}"
                await _admin(server, f"CREATE DATABASE {name}")
                created = (server, name)
                url = server.url_for(name)
            else:
                postgres = EmbeddedPostgres(data_dir)
                url = postgres.start()
            if not redis_url:
                redis_server = EmbeddedRedis(data_dir, persistent=redis_persistent)
                redis_url = redis_server.start()
            yield Scratch(url, redis_url, postgres, redis_server)
        finally:
            if redis_server is not None:
                redis_server.stop()
            if postgres is not None:
                postgres.stop()
            if created is not None:
                await _admin(created[0], f"DROP DATABASE IF EXISTS {created[1]} WITH (FORCE)")

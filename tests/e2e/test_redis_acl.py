"""The projector as a Redis ACL user allowed only the commands it needs, and no password
in any line it prints, whether the password is right or wrong."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from redis.exceptions import ResponseError
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import founding_lines
from fixtures.servers import RedisServer
from stanceline.settings import Settings
from support.running import eventually
from support.service import projector_process

PROJECTOR_COMMANDS = (
    # Reading the group, acknowledging, reclaiming and the heartbeat.
    "+xreadgroup +xack +xautoclaim +xclaim +xpending "
    "+xgroup|create +xgroup|delconsumer +xinfo|groups "
    # The delivery cap's memory of each pending entry's last error.
    "+hset +hmget +hdel "
    # Connection housekeeping.
    "+ping +hello"
)


@pytest.fixture
async def acl_user(redis_server: RedisServer, settings: Settings) -> AsyncIterator[tuple[str, str]]:
    admin = aioredis.Redis.from_url(redis_server.url)
    name, password = f"projector-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    try:
        await admin.execute_command(
            "ACL",
            "SETUSER",
            name,
            "reset",
            "on",
            f">{password}",
            f"~{settings.stream}",
            f"~{settings.stream}:last-errors:*",
            *PROJECTOR_COMMANDS.split(),
        )
    except ResponseError as exc:
        await admin.aclose()
        pytest.skip(f"this Redis has no ACLs: {exc}")
    try:
        yield name, password
    finally:
        await admin.execute_command("ACL", "DELUSER", name)
        await admin.aclose()


def _with_user(url: str, user: str, password: str) -> str:
    return make_url(url).set(username=user, password=password).render_as_string(hide_password=False)


def _env(settings: Settings, redis_url: str) -> dict[str, str]:
    return {
        "STANCELINE_DATABASE_URL": settings.database_url or "",
        "STANCELINE_REDIS_URL": redis_url,
        "STANCELINE_STREAM": settings.stream,
        "STANCELINE_GROUP": settings.group,
        "STANCELINE_RECLAIM_IDLE_MS": "1000",
    }


async def _stored(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT count(*) FROM events")) or 0)


async def _read(log: Path) -> str:
    return await asyncio.to_thread(log.read_text, errors="replace")


async def test_the_projector_runs_as_an_acl_user_with_only_stream_commands(
    settings: Settings,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    redis_server: RedisServer,
    acl_user: tuple[str, str],
    tmp_path: Path,
) -> None:
    user, password = acl_user
    lines = founding_lines()
    for line in [*lines, b"not json"]:
        await redis_client.xadd(settings.stream, {"event": line})
    url = _with_user(redis_server.url, user, password)
    async with projector_process(
        _env(settings, url), tmp_path / "right.log", clean_exit=False
    ) as log:
        await eventually(lambda: _stored(engine), lambda n: n == len(lines), within=60)
        await asyncio.sleep(2)  # a reclaim pass and a gauge refresh, both under the ACL
    text = await _read(log)
    assert password not in text
    assert "NOPERM" not in text, text


async def test_a_wrong_password_is_reported_without_the_password(
    settings: Settings,
    redis_server: RedisServer,
    acl_user: tuple[str, str],
    tmp_path: Path,
) -> None:
    user, _ = acl_user
    wrong = f"wrong-{uuid.uuid4().hex}"
    url = _with_user(redis_server.url, user, wrong)
    async with projector_process(
        _env(settings, url), tmp_path / "wrong.log", clean_exit=False
    ) as log:
        text = await eventually(lambda: _read(log), lambda t: "Redis unavailable" in t, within=60)
    text = await _read(log)
    assert wrong not in text
    assert "Redis unavailable" in text

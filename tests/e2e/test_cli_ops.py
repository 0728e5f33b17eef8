"""The operator commands as users run them: the real ``stanceline`` executable, its exit
codes, its ``--json`` documents on stdout, against real Postgres and Redis."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import FOUNDING, founding_lines
from stanceline.ops.migrate import head_revision
from stanceline.projector import pipeline
from stanceline.projector.entries import Entry
from stanceline.settings import Settings
from stanceline.store.db import create_engine
from support.dump import dump_projection
from support.events import raw, statement
from support.running import eventually, projector_running
from support.service import STANCELINE

ARMS = "us-arms-strikes-inside-russia"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    out: bytes = b""  # stdout as it came, for bytes that must arrive exactly

    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)


def environment(settings: Settings, database_url: str | None = None) -> dict[str, str]:
    return {
        "STANCELINE_DATABASE_URL": database_url or settings.database_url or "",
        "STANCELINE_REDIS_URL": settings.redis_url or "",
        "STANCELINE_STREAM": settings.stream,
        "STANCELINE_GROUP": settings.group,
        "COLUMNS": "250",  # one line per message, whatever the terminal
    }


async def stanceline(env: dict[str, str], *args: str, answer: bytes | None = None) -> Run:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("STANCELINE_")}
    process = await asyncio.create_subprocess_exec(
        str(STANCELINE),
        *args,
        env={**inherited, **env},
        stdin=subprocess.PIPE if answer is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(answer), 120)
    assert "Traceback" not in err.decode(), err.decode()
    return Run(process.returncode or 0, out.decode(errors="replace"), err.decode(), out)


async def publish(client: aioredis.Redis, stream: str, lines: list[bytes]) -> list[str]:
    return [(await client.xadd(stream, {"event": line})).decode() for line in lines]


async def ingest(
    settings: Settings, engine: AsyncEngine, client: aioredis.Redis, lines: list[bytes]
) -> list[str]:
    ids = await publish(client, settings.stream, lines)

    async def acked() -> bool:
        groups = {g["name"].decode(): g for g in await client.xinfo_groups(settings.stream)}
        group = groups.get(settings.group)
        return bool(
            group and group["last-delivered-id"].decode() == ids[-1] and not group["pending"]
        )

    async with projector_running(settings, engine):
        await eventually(acked, bool)
    return ids


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)


@pytest.fixture
async def empty_engine(empty_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(empty_database_url)
    yield engine
    await engine.dispose()


async def test_replay_rebuilds_an_empty_database_and_changes_nothing_on_an_ingested_one(
    settings: Settings,
    engine: AsyncEngine,
    empty_engine: AsyncEngine,
    empty_database_url: str,
    redis_client: aioredis.Redis,
) -> None:
    lines = [*founding_lines(), b"not json"]
    await ingest(settings, engine, redis_client, lines)
    fresh = environment(settings, empty_database_url)

    unmigrated = await stanceline(fresh, "replay", "--from", "-", "--json")
    assert unmigrated.code == 1
    assert "stanceline migrate" in unmigrated.stderr
    assert unmigrated.stdout == ""
    assert (await stanceline(fresh, "migrate")).code == 0
    trial = (await stanceline(fresh, "replay", "--from", "-", "--dry-run", "--json")).json()
    assert (trial["dry_run"], trial["new"], trial["dead_lettered"]) == (True, len(lines) - 1, 1)
    assert await count(empty_engine, "events") == 0
    assert await count(empty_engine, "dead_letters") == 0

    report = (await stanceline(fresh, "replay", "--from", "-", "--to", "+", "--json")).json()

    assert (report["new"], report["dead_lettered"]) == (len(lines) - 1, 1)
    assert await dump_projection(empty_engine) == await dump_projection(engine)
    live_before = await dump_projection(engine)
    again = (await stanceline(environment(settings), "replay", "--from", "-", "--json")).json()
    assert (again["new"], again["duplicates"], again["dead_lettered"]) == (0, len(lines) - 1, 0)
    assert again["already_dead_lettered"] == 1
    assert await dump_projection(engine) == live_before
    assert await count(engine, "events") == len(lines) - 1


async def test_status_json_reports_the_unconsumed_entries_as_lag(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    lines = founding_lines()
    ids = await ingest(settings, engine, redis_client, lines[:5])
    waiting = await publish(redis_client, settings.stream, lines[5:8])
    env = environment(settings)

    report = (await stanceline(env, "status", "--json")).json()

    (group,) = report["stream"]["groups"]
    assert (group["lag_entries"], group["pending"]) == (3, 0)
    assert group["lag_seconds"] >= 0
    assert report["stream"]["last_entry_id"] == waiting[-1]
    assert report["store"]["events"] == 5

    other = settings.group + "-audit"
    created = (await stanceline(env, "replay", "--group", other, "--from", ids[1], "--json")).json()
    assert (created["existed"], created["position"]) == (False, ids[1])
    rewound = (await stanceline(env, "replay", "--group", other, "--from", "0", "--json")).json()
    assert (rewound["existed"], rewound["previous_position"]) == (True, ids[1])
    lags = {
        g["name"]: g["lag_entries"]
        for g in (await stanceline(env, "status", "--json")).json()["stream"]["groups"]
    }
    assert lags == {settings.group: 3, other: 8}


async def test_a_fixed_dead_letter_redrives_and_purge_asks_first(
    settings: Settings, engine: AsyncEngine
) -> None:
    broken = statement("cli-fix", "cli.fix", "us.dod", ARMS, "support", "2024-12-01T00:00:00Z")
    broken["data"]["stance"] = "supportive"
    await pipeline.commit(
        engine, [Entry("1-0", raw(broken)), Entry("2-0", b"not json")], stream=settings.stream
    )
    env = environment(settings)
    listed = (await stanceline(env, "dlq", "list", "--reason", "data", "--json")).json()
    (letter,) = listed["dead_letters"]
    assert (letter["reason_key"], letter["stream_entry_id"]) == ("data.stance", "1-0")
    shown = (await stanceline(env, "dlq", "show", str(letter["id"]), "--json")).json()
    assert json.loads(shown["raw_text"]) == broken

    broken["data"]["stance"] = "support"  # the fix
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE dead_letters SET raw = :raw WHERE id = :id"),
            {"raw": raw(broken), "id": letter["id"]},
        )
    trial = (await stanceline(env, "dlq", "redrive", "--all", "--dry-run", "--json")).json()
    assert (trial["projected"], trial["still_failing"]) == (1, 1)
    assert await count(engine, "events") == 0
    done = (await stanceline(env, "dlq", "redrive", str(letter["id"]), "--json")).json()
    assert (done["projected"], done["removed"], done["missing"]) == (1, 1, [])
    assert await count(engine, "events") == 1
    again = (await stanceline(env, "dlq", "redrive", str(letter["id"]), "--json")).json()
    assert (again["selected"], again["missing"]) == (0, [letter["id"]])

    refused = await stanceline(env, "dlq", "purge", "--before", "2999-01-01", answer=b"n\n")
    assert refused.code == 1
    assert "Delete 1 dead letters" in refused.stderr
    assert await count(engine, "dead_letters") == 1
    purged = await stanceline(env, "dlq", "purge", "--before", "2999-01-01", "--yes", "--json")
    assert purged.json()["purged"] == 1
    assert await count(engine, "dead_letters") == 0


async def test_rebuild_reports_events_per_second(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    await ingest(settings, engine, redis_client, founding_lines())
    live = await dump_projection(engine)
    env = environment(settings)

    trial = (await stanceline(env, "rebuild", "--dry-run", "--json")).json()
    report = (await stanceline(env, "rebuild", "--json")).json()

    assert trial["swapped"] is False
    assert set(trial["differences"].values()) == {0}
    assert (report["swapped"], report["events"]) == (True, len(founding_lines()))
    assert report["events_per_second"] > 0
    assert await dump_projection(engine) == live
    status = (await stanceline(env, "status", "--json")).json()
    assert status["projection"]["rebuilt_events"] == len(founding_lines())


async def test_failures_exit_non_zero_with_one_clear_line(settings: Settings) -> None:
    env = environment(settings)
    no_redis = {**env, "STANCELINE_REDIS_URL": "redis://127.0.0.1:1/0"}
    no_postgres = {**env, "STANCELINE_DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/x"}
    unset = {k: v for k, v in env.items() if k != "STANCELINE_DATABASE_URL"}
    cases = [
        (env, ["replay", "--from", "12-x"], 2, "not a stream entry id"),
        (env, ["replay", "--from", "9-0", "--to", "3-0"], 2, "is after"),
        (env, ["replay", "--group", "g", "--from", "0", "--to", "5"], 2, "--group"),
        (env, ["replay", "--from", "-", "--stream", "nope"], 1, "no stream named 'nope'"),
        (env, ["dlq", "redrive"], 2, "exactly one"),
        (env, ["dlq", "show", "x"], 2, "ID"),
        (env, ["dlq", "purge", "--before", "someday"], 2, "duration"),
        (no_redis, ["status", "--json"], 1, "cannot reach Redis at redis://127.0.0.1:1/0"),
        (no_postgres, ["dlq", "list"], 1, "cannot reach Postgres at postgresql://u:***@"),
        (unset, ["rebuild"], 2, "set STANCELINE_DATABASE_URL"),
    ]
    runs = await asyncio.gather(*(stanceline(e, *args) for e, args, _, _ in cases))
    for (_, args, code, message), run in zip(cases, runs, strict=True):
        assert (run.code, run.stdout) == (code, ""), (args, run.stderr)
        assert message in run.stderr, (args, run.stderr)
        assert "pw" not in run.stderr


async def test_every_operator_command_has_help() -> None:
    commands = [
        ["replay"],
        ["rebuild"],
        ["status"],
        ["dlq"],
        ["dlq", "list"],
        ["dlq", "show"],
        ["dlq", "redrive"],
        ["dlq", "purge"],
    ]
    runs = await asyncio.gather(*(stanceline({}, *c, "--help") for c in commands))
    for command, run in zip(commands, runs, strict=True):
        assert run.code == 0, (command, run.stderr)
        assert "Usage" in run.stdout, command
    assert "lag" in runs[2].stdout


# --- answers on stdout, whole (issue 14) ---------------------------------------------------

LONG_ENTRY = "1796529584586-123456789"
NARROW = {"COLUMNS": "80"}  # what rich assumes off a terminal: the width tables were cut at


async def test_human_answers_go_to_stdout_whole_when_piped(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    broken = statement("cli-out", "cli.out", "us.dod", ARMS, "supportive", "2024-12-01T00:00:00Z")
    await pipeline.commit(
        engine, [Entry(LONG_ENTRY, raw(broken)), Entry("2-0", b"not json")], stream=settings.stream
    )
    await publish(redis_client, settings.stream, founding_lines()[:2])
    env = {**environment(settings), **NARROW}

    listed = await stanceline(env, "dlq", "list")
    status = await stanceline(env, "status")

    for run in (listed, status):
        assert (run.code, run.stderr) == (0, ""), run.stderr
        cut = [line for line in run.stdout.splitlines() if "…" in line and " … " not in line]
        assert not cut, run.stdout  # (" … " is the status's range of entry ids)
    assert LONG_ENTRY in listed.stdout
    assert "data.stance" in listed.stdout
    assert "2 of 2 shown" in listed.stdout
    assert settings.group in status.stdout
    assert settings.stream in status.stdout
    assert "dead letters: 2" in status.stdout


async def test_dlq_show_previews_a_large_payload_and_raw_or_json_give_it_whole(
    settings: Settings, engine: AsyncEngine
) -> None:
    big = b'{"event": "' + "é".encode() * (1024 * 1024) + b'"}'  # 2 MiB, UTF-8
    hostile = b"\x1b[2J\x1b]0;owned\x07 \xff not UTF-8"
    await pipeline.commit(
        engine, [Entry("1-0", big), Entry("2-0", hostile)], stream=settings.stream
    )
    env = {**environment(settings), **NARROW}
    ids = [d["id"] for d in (await stanceline(env, "dlq", "list", "--json")).json()["dead_letters"]]

    shown = await stanceline(env, "dlq", "show", str(ids[0]))
    raw = await stanceline(env, "dlq", "show", str(ids[0]), "--raw")
    whole = (await stanceline(env, "dlq", "show", str(ids[0]), "--json")).json()
    escaped = await stanceline(env, "dlq", "show", str(ids[1]))
    both = await stanceline(env, "dlq", "show", str(ids[0]), "--raw", "--json")

    assert (shown.code, shown.stderr) == (0, "")
    assert len(shown.out) < 8 * 1024
    assert "stream_entry_id: 1-0" in shown.stdout
    assert f"raw: {len(big)} bytes" in shown.stdout
    assert "é" * 1000 in shown.stdout
    left = len(big) - 4095  # 4 KiB, cut before the character that would not fit whole
    assert f"{left} more bytes not shown" in shown.stdout
    assert "--raw" in shown.stdout
    assert (raw.code, raw.out) == (0, big)
    assert base64.b64decode(whole["raw_base64"]) == big
    assert escaped.code == 0
    assert "\\x1b[2J\\x1b]0;owned\\x07 \\xff not UTF-8" in escaped.stdout
    assert b"\x1b" not in escaped.out
    assert both.code == 2


async def test_status_reports_the_configured_group_missing_with_the_whole_stream_as_lag(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    ids = await publish(redis_client, settings.stream, founding_lines()[:3])
    env = environment(settings)

    report = (await stanceline(env, "status", "--json")).json()
    human = await stanceline(env, "status")

    (group,) = report["stream"]["groups"]
    assert group["name"] == settings.group
    assert (group["exists"], group["last_delivered_id"]) == (False, None)
    assert (group["lag_entries"], group["pending"], group["consumers"]) == (3, 0, [])
    assert group["lag_seconds"] >= 0
    assert report["stream"]["first_entry_id"] == ids[0]
    assert human.code == 0
    assert f"group {settings.group} does not exist yet" in human.stdout
    assert "reads all 3 entries" in human.stdout


# Every command that runs once and ends, with each server it needs unreachable in turn.
NEEDS = {
    ("migrate",): "postgres",
    ("publish", str(FOUNDING)): "redis",
    ("replay", "--from", "-"): "both",
    ("replay", "--group", "g", "--from", "0"): "redis",
    ("rebuild",): "postgres",
    ("status",): "both",
    ("status", "--json"): "both",
    ("dlq", "list"): "postgres",
    ("dlq", "show", "1"): "postgres",
    ("dlq", "redrive", "--all"): "postgres",
    ("dlq", "purge", "--before", "2999-01-01", "--yes"): "postgres",
}
UNREACHABLE = {
    "redis": (
        "STANCELINE_REDIS_URL",
        "redis://127.0.0.1:1/0",
        "cannot reach Redis at redis://127.0.0.1:1/0: ",
    ),
    "postgres": (
        "STANCELINE_DATABASE_URL",
        "postgresql://u:pw@127.0.0.1:1/x",
        "cannot reach Postgres at postgresql://u:***@127.0.0.1:1/x: ",
    ),
}


@pytest.mark.parametrize(
    ("args", "server"),
    [
        pytest.param(
            args, server, id=f"{' '.join(args[:2]).replace(str(FOUNDING), 'FILE')}-{server}"
        )
        for args, needs in NEEDS.items()
        for server in ("redis", "postgres")
        if needs in (server, "both")
    ],
)
async def test_a_command_fails_in_one_line_when_a_server_is_unreachable(
    settings: Settings, args: tuple[str, ...], server: str
) -> None:
    variable, url, message = UNREACHABLE[server]
    env = {**environment(settings), **NARROW, variable: url}

    run = await stanceline(env, *args)

    assert (run.code, run.stdout) == (1, ""), run.stderr
    assert run.stderr.startswith("error: " + message), run.stderr
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert "pw" not in run.stderr


async def test_publish_and_migrate_answer_json_on_stdout(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    env = environment(settings)
    published = await stanceline(env, "publish", str(FOUNDING), "--json")
    assert published.code == 0, published.stderr
    assert published.json() == {"published": len(founding_lines()), "stream": settings.stream}
    assert await redis_client.xlen(settings.stream) == len(founding_lines())

    migrated = await stanceline(env, "migrate", "--json")
    assert migrated.code == 0, migrated.stderr
    assert migrated.json() == {"revision": head_revision()}

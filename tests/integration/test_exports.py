"""Exports with provenance over HTTP against real Postgres: the columns, corrections and
retractions, the change points of the founding example worked out by hand, Parquet's
types and numbers, both time axes, and a known_at export that stays the same bytes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.store.exports import CHANGE_COLUMNS, STATEMENT_COLUMNS
from support.analysts import (
    ARMS,
    DOD_VEHICLES,
    KIRBY_ARMS,
    NSC_VEHICLES,
    VEHICLES,
    WH_LIMITED,
    WH_SUPPORT,
    api,
    founding_documents,
    store,
)
from support.events import envelope, statement
from support.service import STANCELINE

STATEMENTS, CHANGES = "/v1/export/statements", "/v1/export/changes"


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    await store(engine, founding_documents())
    async with api(engine) as http:
        yield http


async def export(http: httpx.AsyncClient, url: str, **params: Any) -> httpx.Response:
    response = await http.get(url, params=params)
    assert response.status_code == 200, response.text
    return response


def rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.text)))


async def pg_now(engine: AsyncEngine) -> datetime:
    await asyncio.sleep(0.005)
    async with engine.connect() as conn:
        moment: datetime = await conn.scalar(sa.text("SELECT clock_timestamp()"))
    await asyncio.sleep(0.005)
    return moment


async def test_statements_carry_names_titles_and_the_event_that_made_them(
    client: httpx.AsyncClient,
) -> None:
    listed = rows(await export(client, STATEMENTS, topics=VEHICLES))

    assert list(listed[0]) == [name for name, _ in STATEMENT_COLUMNS]
    # said_at order, then statement id; the Pentagon on the 23rd, three on the 24th.
    assert [r["statement_id"] for r in listed] == [
        DOD_VEHICLES,
        "2023-05-24.rdk.us-vehicles-in-belgorod",
        "2023-05-24.ru.mod.us-vehicles-in-belgorod",
        NSC_VEHICLES,
    ]
    nsc = listed[3]
    assert (nsc["actor_id"], nsc["actor_name"]) == ("us.nsc", "US National Security Council")
    assert nsc["topic_title"].startswith("US-made vehicles")
    assert (nsc["said_at"], nsc["stance"], nsc["score"]) == (
        "2023-05-24T12:00:00Z",
        "neutral",
        "0.0",
    )
    assert nsc["event_id"].startswith("founding-")
    assert nsc["corrected"] == "false"
    assert datetime.fromisoformat(nsc["recorded_at"]) <= datetime.now(UTC)


async def test_corrections_and_retractions_show_in_the_export(engine: AsyncEngine) -> None:
    await store(engine, founding_documents())
    fix = statement(
        "fix-1",
        NSC_VEHICLES,
        "us.nsc",
        VEHICLES,
        "oppose",
        "2023-05-24T12:00:00Z",
        kind="statement.corrected",
        time="2025-02-01T00:00:00Z",
    )
    gone = envelope(
        "gone-1", "statement.retracted", "2025-02-01T00:00:00Z", {"statement_id": DOD_VEHICLES}
    )
    await store(engine, [fix, gone])
    async with api(engine) as http:
        listed = rows(
            await export(http, STATEMENTS, topics=VEHICLES, actors="us", include_descendants="true")
        )
    assert [(r["statement_id"], r["stance"], r["event_id"], r["corrected"]) for r in listed] == [
        (NSC_VEHICLES, "oppose", "fix-1", "true")
    ]


# The founding example's change points, worked out by hand: the US as a whole goes
# neutral on the vehicles when the NSC speaks after the Pentagon, and on strikes inside
# Russia oppose -> neutral -> support as the White House speaks; the White House's own
# series starts neutral (no change), its series with the NSC follows the US's.
FOUNDING_CHANGES = [
    (NSC_VEHICLES, "us", "true", "shift", DOD_VEHICLES),
    (WH_LIMITED, "us", "true", "shift", KIRBY_ARMS),
    (WH_LIMITED, "us.white-house", "true", "shift", KIRBY_ARMS),
    (WH_SUPPORT, "us", "true", "shift", WH_LIMITED),
    (WH_SUPPORT, "us.white-house", "false", "shift", WH_LIMITED),
    (WH_SUPPORT, "us.white-house", "true", "shift", WH_LIMITED),
]


def change_points(listed: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return [
        (
            r["statement_id"],
            r["series_actor_id"],
            r["rollup"],
            r["change"],
            r["previous_statement_id"],
        )
        for r in listed
    ]


async def test_changes_are_every_series_shift_and_flip_as_it_stands(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    listed = rows(await export(client, CHANGES))
    assert list(listed[0]) == [name for name, _ in CHANGE_COLUMNS]
    assert change_points(listed) == FOUNDING_CHANGES

    # The actors filter picks series by their actor; from/to cut points, not series.
    us_only = rows(await export(client, CHANGES, actors="us", **{"from": "2024-01-01"}))
    assert change_points(us_only) == [c for c in FOUNDING_CHANGES[1:] if c[1] == "us"]
    # At a known_at after every commit the fold gives the same bytes as the projection.
    moment = (await pg_now(engine)).isoformat()
    for url in (STATEMENTS, CHANGES):
        for fmt in ("csv", "parquet"):
            now = (await export(client, url, format=fmt)).content
            assert (await export(client, url, format=fmt, known_at=moment)).content == now


async def test_parquet_has_real_types_and_the_numbers_of_the_csv(client: httpx.AsyncClient) -> None:
    response = await export(client, STATEMENTS, format="parquet", topics=ARMS)
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(response.content))
    assert table.schema.field("said_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("recorded_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("score").type == pa.float64()
    assert table.schema.field("corrected").type == pa.bool_()
    from_csv = rows(await export(client, STATEMENTS, topics=ARMS))
    from_parquet = table.to_pylist()
    assert [r["statement_id"] for r in from_parquet] == [r["statement_id"] for r in from_csv]
    for p, c in zip(from_parquet, from_csv, strict=True):
        assert p["said_at"] == datetime.fromisoformat(c["said_at"])
        assert p["score"] == float(c["score"])
        assert p["confidence"] == float(c["confidence"])
        assert (p["quote"] or "") == c["quote"]
    accepted = await client.get(
        STATEMENTS, params={"topics": ARMS}, headers={"Accept": "application/vnd.apache.parquet"}
    )
    assert accepted.content == response.content


async def test_a_known_at_export_is_final(engine: AsyncEngine) -> None:
    await store(engine, founding_documents())
    moment = (await pg_now(engine)).isoformat()
    async with api(engine) as http:
        first = {
            (url, fmt): (await export(http, url, format=fmt, known_at=moment)).content
            for url in (STATEMENTS, CHANGES)
            for fmt in ("csv", "parquet")
        }
        later = [
            statement("later-1", "later.ua", "ua", ARMS, "support", "2023-06-01T00:00:00Z"),
            envelope(
                "later-2",
                "statement.retracted",
                "2025-03-01T00:00:00Z",
                {"statement_id": WH_SUPPORT},
            ),
        ]
        await store(engine, later)
        for (url, fmt), content in first.items():
            assert (await export(http, url, format=fmt, known_at=moment)).content == content
        # ... while the present has moved on.
        assert (await export(http, CHANGES, format="csv")).content != first[(CHANGES, "csv")]


@pytest.mark.parametrize(
    "params",
    [
        {"format": "xlsx"},
        {"topics": "a b"},
        {"from": "yesterday"},
        {"known_at": "2024-13-01"},
    ],
)
async def test_bad_parameters_are_400_problems(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    for url in (STATEMENTS, CHANGES):
        response = await client.get(url, params=params)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"


async def test_the_command_writes_the_bytes_the_route_streams(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await store(engine, founding_documents())
    moment = (await pg_now(engine)).isoformat()
    filters = {"topics": ARMS, "actors": "us", "known_at": moment}
    async with api(engine) as http:
        streamed = {
            fmt: (
                await export(http, CHANGES, format=fmt, include_descendants="true", **filters)
            ).content
            for fmt in ("csv", "parquet")
        }
    for fmt, content in streamed.items():
        target = tmp_path / f"changes.{fmt}"
        args = [str(STANCELINE), "export", "changes", "--format", fmt, "-o", str(target)]
        args += [f"--{k.replace('_', '-')}={v}" for k, v in filters.items()]
        args += ["--include-descendants", "--json"]
        env = {**os.environ, "STANCELINE_DATABASE_URL": database_url}
        done = await asyncio.to_thread(
            subprocess.run, args, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert (report["rows"], report["bytes"]) == (5, len(content))  # FOUNDING_CHANGES[1:]
        assert target.read_bytes() == content
    failed = await asyncio.to_thread(
        subprocess.run,
        [str(STANCELINE), "export", "changes", "-o", str(tmp_path / "x"), "--from", "soon"],
        env={**os.environ, "STANCELINE_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 2
    assert "--from" in failed.stderr
    assert not (tmp_path / "x").exists()

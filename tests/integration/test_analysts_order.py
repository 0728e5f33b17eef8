"""Arrival order changes no network and no export: the same events published through the
real write path in shuffled batches, into separate databases, answer the same bytes.

Only ``recorded_at`` may differ (it is each database's clock at the append); it is
blanked before comparing. Corrections, a correction that arrives before its statement
and retractions are among the events, so the comparison covers the visible statements'
rules and the change points' series, not only the plain founding example."""

from __future__ import annotations

import csv
import io
import random
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from fixtures.servers import PostgresServer
from support.analysts import (
    ARMS,
    DOD_VEHICLES,
    NSC_VEHICLES,
    TOPICS,
    VEHICLES,
    api,
    founding_documents,
    scratch_engine,
    store,
)
from support.events import envelope, raw, statement

EXTRA = [
    statement(
        "x-fix-nsc",
        NSC_VEHICLES,
        "us.nsc",
        VEHICLES,
        "oppose",
        "2023-05-24T12:00:00Z",
        kind="statement.corrected",
        time="2025-02-01T00:00:00Z",
    ),
    statement(
        "x-fix-early",
        "x.ru.arms",
        "ru",
        ARMS,
        "oppose",
        "2023-05-26T00:00:00Z",
        kind="statement.corrected",
        time="2025-02-02T00:00:00Z",
    ),
    statement("x-ru-arms", "x.ru.arms", "ru", ARMS, "support", "2023-05-26T00:00:00Z"),
    statement("x-lsr-arms", "x.lsr.arms", "lsr", ARMS, "neutral", "2023-05-26T00:00:00Z"),
    statement("x-dod-arms", "x.dod.arms", "us.dod", ARMS, "support", "2023-05-27T00:00:00Z"),
    envelope(
        "x-gone", "statement.retracted", "2025-03-01T00:00:00Z", {"statement_id": DOD_VEHICLES}
    ),
]
NETWORKS = [
    {"topics": TOPICS, "from": "2023-05-01", "to": "2023-05-31"},
    {
        "topics": TOPICS,
        "actors": "us,ua,ru,rdk,lsr",
        "include_descendants": "true",
        "from": "2023-05-15",
        "to": "2023-05-31",
        "window": "P4D",
        "step": "P1D",
        "kernel": "triangular",
        "normalization": "jaccard",
    },
    {"topics": TOPICS, "from": "2023-05-01", "to": "2024-12-31", "kernel": "gaussian"},
]


def documents() -> list[bytes]:
    return [*founding_documents(), *(raw(d) for d in EXTRA)]


async def answers(engine: AsyncEngine, batches: list[list[bytes]]) -> dict[str, Any]:
    for batch in batches:
        await store(engine, batch)
    found: dict[str, Any] = {}
    async with api(engine) as http:
        for number, params in enumerate(NETWORKS):
            response = await http.get("/v1/networks/agreement", params=params)
            assert response.status_code == 200, response.text
            found[f"network {number}"] = response.content
            gexf = await http.get("/v1/networks/agreement", params={**params, "format": "gexf"})
            found[f"gexf {number}"] = gexf.content
        for kind in ("statements", "changes"):
            for params in ({}, {"actors": "us", "include_descendants": "true"}):
                url = f"/v1/export/{kind}"
                text = (await http.get(url, params=params)).text
                found[f"{kind} csv {params}"] = _without_recorded_at(text)
                table = pq.read_table(
                    io.BytesIO(
                        (await http.get(url, params={**params, "format": "parquet"})).content
                    )
                )
                found[f"{kind} parquet {params}"] = table.drop_columns(["recorded_at"]).to_pylist()
    return found


def _without_recorded_at(text: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        assert row.pop("recorded_at")
    return rows


def shuffled(seed: int) -> list[list[bytes]]:
    """The events in a random order, cut into random batches."""
    rng = random.Random(seed)
    items = documents()
    rng.shuffle(items)
    batches: list[list[bytes]] = []
    while items:
        size = rng.randint(1, 6)
        batches.append(items[:size])
        items = items[size:]
    return batches


@pytest.mark.parametrize("seed", [1, 2])
async def test_arrival_order_changes_no_network_and_no_export(
    engine: AsyncEngine, postgres_server: PostgresServer, template_database: str, seed: int
) -> None:
    in_order = await answers(engine, [documents()])
    assert in_order["changes csv {}"], "the events make change points"
    async with scratch_engine(postgres_server, template_database) as other:
        again = await answers(other, shuffled(seed))
    assert again.keys() == in_order.keys()
    for key, value in in_order.items():
        assert again[key] == value, key

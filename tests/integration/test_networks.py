"""Agreement networks over HTTP against real Postgres: the founding example's network as a
person draws it, its four formats read back by networkx and compared with the JSON, both
time axes, and the documented 400s."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import os
import runpy
import subprocess
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import networkx as nx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.readmodel.network_formats import CSV_COLUMNS
from support.analysts import ARMS, TOPICS, api, founding_documents, store
from support.events import statement
from support.service import STANCELINE

URL = "/v1/networks/agreement"
DOCS_ANSWER = Path(__file__).resolve().parents[2] / "docs" / "founding-network.json"
MAY_2023 = {
    "topics": TOPICS,
    "actors": "us,ua,ru,rdk",
    "include_descendants": "true",
    "from": "2023-05-01",
    "to": "2023-05-31",
}
PROBLEM_JSON = "application/problem+json"

# Drawn by hand from the founding example (May 2023, each state with its parts):
# - us and ua both oppose strikes inside Russia (the NSC, Ukraine's HUR): congruence 1;
# - ru says Ukraine was behind the raid, ua denies it: conflict 1;
# - rdk and ru both say US vehicles were used: congruence 1;
# - on the vehicles, the Pentagon's oppose and the NSC's neutral against Russia's support:
#   congruence 0 + 1/2, conflict 1 + 1/2; rdk (support) meets the US the same way.
FOUNDING_EDGES = {
    ("rdk", "ru"): (1.0, 0.0),
    ("rdk", "us"): (0.5, 1.5),
    ("ru", "ua"): (0.0, 1.0),
    ("ru", "us"): (0.5, 1.5),
    ("ua", "us"): (1.0, 0.0),
}


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    await store(engine, founding_documents())
    async with api(engine) as http:
        yield http


async def get(http: httpx.AsyncClient, **params: Any) -> httpx.Response:
    response = await http.get(URL, params=params)
    assert response.status_code == 200, response.text
    return response


async def test_the_founding_example_gives_the_network_drawn_by_hand(
    client: httpx.AsyncClient,
) -> None:
    body = (await get(client, **MAY_2023)).json()

    (window,) = body["windows"]
    assert (window["start"], window["stop"]) == (
        "2023-05-01T00:00:00Z",
        "2023-05-31T23:59:59.999999Z",
    )
    assert window["middle"] == "2023-05-16T12:00:00Z"  # to the microsecond, half to even
    assert [(n["id"], n["name"], n["kind"]) for n in window["nodes"]] == [
        ("rdk", "Russian Volunteer Corps", "armed-group"),
        ("ru", "Russia", "state"),
        ("ua", "Ukraine", "state"),
        ("us", "United States", "state"),
    ]
    edges = {(e["source"], e["target"]): (e["congruence"], e["conflict"]) for e in window["edges"]}
    assert edges == FOUNDING_EDGES
    # subtract, no normalisation: the weight is congruence - conflict
    assert all(e["weight"] == e["congruence"] - e["conflict"] for e in window["edges"])
    # Eight statements by these actors' trees (lsr's is not theirs); 4 of 7 is conflict.
    assert window["statements"] == 8
    assert window["polarization"] == pytest.approx(4.0 / 7.0)
    assert (body["kernel"], body["aggregation"], body["normalization"]) == (
        "uniform",
        "subtract",
        "none",
    )


async def test_without_descendants_and_actors_each_actor_stands_for_itself(
    client: httpx.AsyncClient,
) -> None:
    params = {k: v for k, v in MAY_2023.items() if k not in ("actors", "include_descendants")}
    (window,) = (await get(client, **params)).json()["windows"]
    ids = [n["id"] for n in window["nodes"]]
    assert ids == ["lsr", "rdk", "ru.mod", "ua", "ua.hur", "us.dod", "us.nsc"]
    edges = {(e["source"], e["target"]): (e["congruence"], e["conflict"]) for e in window["edges"]}
    assert edges[("rdk", "us.dod")] == (0.0, 1.0)
    assert edges[("rdk", "us.nsc")] == (0.5, 0.5)
    assert edges[("lsr", "ua")] == (1.0, 0.0)  # both deny Ukraine was behind the raid
    assert edges[("ua.hur", "us.nsc")] == (1.0, 0.0)
    assert ("us.dod", "us.nsc") in edges  # two parts of one state meet like any actors


async def test_weekly_triangular_windows_list_every_node_in_every_window(
    client: httpx.AsyncClient,
) -> None:
    body = (
        await get(
            client,
            **{**MAY_2023, "from": "2023-05-18T12:00:00Z", "to": "2023-05-28T12:00:00Z"},
            window="P4D",
            step="P2D",
            kernel="triangular",
        )
    ).json()
    starts = [w["start"] for w in body["windows"]]
    assert starts == [f"2023-05-{d}T12:00:00Z" for d in (18, 20, 22, 24)]
    assert all([n["id"] for n in w["nodes"]] == ["rdk", "ru", "ua", "us"] for w in body["windows"])
    # Window May 20-24 (middle May 22 12:00): ua's raid denial (May 22 12:00) weighs 1, the
    # May 24 12:00 statements sit on its end (weight 0), the Pentagon's (May 23 12:00) 1/2.
    second = body["windows"][1]
    assert second["statements"] == 8  # May 22 and 23, and the six at noon on May 24
    assert second["edges"] == []  # every pair needs a May 24 statement, weighed 0 here
    # Window May 22-26 (middle May 24 12:00): May 24 noon weighs 1, the Pentagon 1/2, ua 0.
    third = {(e["source"], e["target"]): e for e in body["windows"][2]["edges"]}
    assert (third[("ru", "us")]["congruence"], third[("ru", "us")]["conflict"]) == (0.5, 1.0)
    assert (third[("ua", "us")]["congruence"], third[("ua", "us")]["conflict"]) == (1.0, 0.0)
    assert ("ru", "ua") not in third  # ua's denial weighs 0 at this window's start


async def test_every_format_carries_the_numbers_of_the_json(client: httpx.AsyncClient) -> None:
    params = {**MAY_2023, "from": "2023-05-20", "to": "2023-05-27", "window": "P3D"}
    params["step"] = "P2D"
    body = (await get(client, **params, kernel="epanechnikov")).json()
    wanted = {
        (w["start"], e["source"], e["target"]): (e["congruence"], e["conflict"], e["weight"])
        for w in body["windows"]
        for e in w["edges"]
    }
    assert len(body["windows"]) == 3
    assert wanted

    table = (await get(client, **params, kernel="epanechnikov", format="csv")).text
    rows = list(csv.DictReader(io.StringIO(table)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert {
        (r["window_start"], r["source"], r["target"]): (
            float(r["congruence"]),
            float(r["conflict"]),
            float(r["weight"]),
        )
        for r in rows
    } == wanted
    assert {r["source_name"] for r in rows if r["source"] == "ru"} == {"Russia"}

    response = await client.get(
        URL,
        params={**params, "kernel": "epanechnikov"},
        headers={"Accept": "application/graphml+xml"},
    )
    assert response.headers["content-type"] == "application/graphml+xml"
    graphs = list(nx.readwrite.graphml.GraphMLReader()(string=response.content))
    assert [g.graph["start"] for g in graphs] == [w["start"] for w in body["windows"]]
    assert [g.graph["statements"] for g in graphs] == [w["statements"] for w in body["windows"]]
    from_graphml = {
        (g.graph["start"], *sorted((a, b))): (d["congruence"], d["conflict"], d["weight"])
        for g in graphs
        for a, b, d in g.edges(data=True)
    }
    assert from_graphml == wanted
    assert graphs[0].nodes["ru"] == {"label": "Russia", "name": "Russia", "kind": "state"}

    gexf = (await get(client, **params, kernel="epanechnikov", format="gexf")).content
    graph = nx.read_gexf(io.BytesIO(gexf))
    assert sorted(graph.nodes) == ["rdk", "ru", "ua", "us"]
    starts = {_seconds(w["start"]): w["start"] for w in body["windows"]}
    from_gexf = {}
    for a, b, d in graph.edges(data=True):
        for (c, start, _), (f, _, _), (w, _, _) in zip(
            d["congruence"], d["conflict"], d["weight"], strict=True
        ):
            from_gexf[(starts[start], *sorted((a, b)))] = (c, f, w)
    assert from_gexf == wanted


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def test_normalisations_and_aggregations_reach_the_weight(
    client: httpx.AsyncClient,
) -> None:
    body = (await get(client, **MAY_2023, aggregation="conflict", normalization="cosine")).json()
    edges = {(e["source"], e["target"]): e for e in body["windows"][0]["edges"]}
    # Degrees (uniform: statements by each tree on the three topics): us 3, ru 2, ua 2.
    assert edges[("ru", "us")]["weight"] == pytest.approx(1.5 / math.sqrt(3 * 2))
    assert edges[("ru", "us")]["conflict"] == 1.5  # the raw numbers stay raw


async def test_known_at_answers_with_what_was_recorded_then(engine: AsyncEngine) -> None:
    await store(engine, founding_documents())
    async with api(engine) as http:
        before = (await get(http, **MAY_2023)).json()["windows"]
        late = statement("late-1", "late.ru.arms", "ru", ARMS, "support", "2023-05-25T00:00:00Z")
        moment = await _pg_now(engine)
        await store(engine, [late])
        now = (await get(http, **MAY_2023)).json()["windows"]
        then = (await get(http, **MAY_2023, known_at=moment.isoformat())).json()["windows"]
    assert then == before
    assert now != before
    edges = {(e["source"], e["target"]): e for e in now[0]["edges"]}
    assert edges[("ru", "us")]["conflict"] == 2.5  # one more conflict on arms with the NSC


async def _pg_now(engine: AsyncEngine) -> datetime:
    async with engine.connect() as conn:
        moment: datetime = await conn.scalar(sa.text("SELECT clock_timestamp()"))
    return moment


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"topics": TOPICS, "from": "2023-05-01"}, "to"),
        ({"from": "2023-05-01", "to": "2023-06-01"}, "topics"),
        ({"topics": TOPICS, "from": "2023-06-01", "to": "2023-05-01"}, "to"),
        ({"topics": TOPICS, "from": "2023-05-01", "to": "2023-06-01", "window": "P1M"}, "window"),
        ({"topics": TOPICS, "from": "2023-05-01", "to": "2023-06-01", "window": "P0D"}, "window"),
        ({"topics": TOPICS, "from": "2023-05-01", "to": "2023-05-03", "window": "P7D"}, "window"),
        (
            {
                "topics": TOPICS,
                "from": "2023-05-01",
                "to": "2024-05-03",
                "window": "P1D",
                "step": "PT1M",
            },
            "step",
        ),
        ({"topics": TOPICS, "from": "2023-05-01", "to": "2023-06-01", "kernel": "box"}, "kernel"),
        ({"topics": TOPICS, "from": "2023-05-01", "to": "2023-06-01", "format": "dot"}, "format"),
        ({"topics": "a b", "from": "2023-05-01", "to": "2023-06-01"}, "topics"),
    ],
)
async def test_bad_parameters_are_documented_400_problems(
    client: httpx.AsyncClient, params: dict[str, str], name: str
) -> None:
    response = await client.get(URL, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert [p["name"] for p in problem["invalid-params"]] == [name], problem


async def test_the_readme_shows_this_answer_and_its_picture(client: httpx.AsyncClient) -> None:
    """docs/founding-network.json is the README's answer; its SVG is drawn from it."""
    assert (await get(client, **MAY_2023)).json() == json.loads(DOCS_ANSWER.read_text())
    picture = runpy.run_path(str(DOCS_ANSWER.with_name("network_picture.py")))
    drawn = picture["svg"](json.loads(DOCS_ANSWER.read_text()))
    assert drawn == DOCS_ANSWER.with_name("founding-network.svg").read_text()


async def test_the_command_prints_the_answer_of_the_route(
    client: httpx.AsyncClient, database_url: str
) -> None:
    env = {**os.environ, "STANCELINE_DATABASE_URL": database_url}
    args = [str(STANCELINE), "network", "--topics", TOPICS, "--actors", "us,ua,ru,rdk"]
    args += ["--include-descendants", "--from", "2023-05-01", "--to", "2023-05-31"]
    for fmt in ("json", "gexf"):
        done = await asyncio.to_thread(
            subprocess.run, [*args, "--format", fmt], env=env, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.rstrip(b"\n") == (await get(client, **MAY_2023, format=fmt)).content
    refused = await asyncio.to_thread(
        subprocess.run, [*args, "--window", "P1M"], env=env, capture_output=True, timeout=120
    )
    assert refused.returncode == 2
    assert b"--window" in refused.stderr

"""Fault trials in the test run: real projector processes, SIGKILLed mid-batch.

The default run is small (2,000 lines, 3 kills); the slow one adds a Postgres outage when
the session's server is ours to stop. The large trial (100k events, 20 kills) is a command,
not a test: see ``harness.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from faults.corpus import generate
from faults.harness import Control, Figures, Servers, TrialOptions, run_trial
from stanceline.contract import (
    EVENT_TYPES,
    STATEMENT_RECORDED,
    STATEMENT_RETRACTED,
    StatementRecorded,
    StatementRetracted,
)
from support.dump import predicted_series_rows

if TYPE_CHECKING:
    from fixtures.servers import PostgresServer, RedisServer


def _assert_nothing_lost(figures: Figures) -> None:
    table = figures.table()
    assert figures.converged, table
    assert figures.lost == 0, table
    assert figures.duplicated == 0, table
    assert figures.mismatched_rows == 0, table
    assert figures.dead_lettered == figures.dead_letters_expected, table
    assert figures.unexpected_dead_letters == 0, table


def test_the_corpus_is_deterministic_and_has_what_the_trial_needs() -> None:
    corpus = generate(2_000, seed=5)
    assert generate(2_000, seed=5).lines == corpus.lines
    assert generate(2_000, seed=6).lines != corpus.lines
    assert (len(corpus.lines), corpus.invalid, corpus.duplicates) == (2_000, 10, 20)
    assert {event.type for event in corpus.events} == set(EVENT_TYPES)
    first_seen: dict[tuple[str, str], int] = {}
    for n, event in enumerate(corpus.events):
        if isinstance(event, StatementRecorded | StatementRetracted):
            first_seen.setdefault((event.type, event.data.statement_id), n)
    early = [
        statement_id
        for (kind, statement_id), n in first_seen.items()
        if kind == STATEMENT_RETRACTED
        and n < first_seen.get((STATEMENT_RECORDED, statement_id), -1)
    ]
    assert early, "some retractions must be published before their statement"
    changes = {row[6] for row in predicted_series_rows(corpus.events)}
    assert {"flip", "shift", "none"} <= changes


async def test_sigkilled_projectors_lose_and_duplicate_nothing(
    database_url: str, redis_server: RedisServer
) -> None:
    options = TrialOptions(events=2_000, kills=3, projectors=2, seed=11, stall_timeout=40)
    figures = await run_trial(options, Servers(database_url, redis_server.url))
    assert figures.kills == 3
    _assert_nothing_lost(figures)


@pytest.mark.slow
async def test_kills_and_a_postgres_outage_lose_nothing(
    database_url: str, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    if not postgres_server.controllable:
        pytest.skip("the session's Postgres is not ours to restart")
    servers = Servers(
        database_url,
        redis_server.url,
        postgres=Control(postgres_server.stop, postgres_server.start),
    )
    options = TrialOptions(events=20_000, kills=8, restart_postgres=1, seed=12)
    figures = await run_trial(options, servers)
    assert figures.postgres_restarts == 1
    _assert_nothing_lost(figures)

"""Canonical dumps of the projection tables, and the pure fold's prediction of them."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.contract import Event
from stanceline.domain.projection import project
from stanceline.store.members import change_kind, series_points
from stanceline.store.tables import PROJECTION_TABLES
from stanceline.store.translate import fact_of


async def dump_projection(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table, rows in primary-key order: equal dumps, equal projections."""
    dump: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in PROJECTION_TABLES:
            order = [c for c in table.primary_key.columns]
            rows = await conn.execute(sa.select(table).order_by(*order))
            dump[table.name] = [tuple(_plain(v) for v in row) for row in rows]
    return dump


def _plain(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return value


_EVERY_SERIES = sa.text(
    f"""
    SELECT topic_id, actor_id, rollup, said_at, statement_id, stance,
           {change_kind("previous_stance", "stance")} AS change, previous_statement_id
      FROM (
        SELECT t.topic_id, a.actor_id, r.rollup, p.said_at, p.statement_id, p.stance,
               lag(p.stance) OVER w AS previous_stance,
               lag(p.statement_id) OVER w AS previous_statement_id
          FROM actors a CROSS JOIN topics t CROSS JOIN (VALUES (false), (true)) AS r(rollup)
         CROSS JOIN LATERAL (
            {series_points("t.topic_id", "a.actor_id", "r.rollup", "true", "ASC", "ALL")}) p
        WINDOW w AS (PARTITION BY t.topic_id, a.actor_id, r.rollup
                     ORDER BY p.said_at, p.statement_id)
      ) AS ranked
     ORDER BY topic_id, actor_id, rollup, said_at, statement_id
    """
)


async def series_rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    """Every series, own and rolled-up, as the store's series definitions read it."""
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(_EVERY_SERIES)]


def predicted_series_rows(events: Iterable[Event]) -> list[tuple[Any, ...]]:
    """What ``series_rows`` must read according to the pure fold."""
    projection = project(fact_of(e) for e in events)
    rows = []
    for (actor_id, topic_id, rollup), points in projection.series().items():
        for p in points:
            rows.append(
                (
                    topic_id,
                    actor_id,
                    rollup,
                    p.body.said_at,
                    p.statement_id,
                    p.body.stance.value,
                    p.change.value,
                    p.previous_statement_id,
                )
            )
    return sorted(rows, key=lambda r: (r[0], r[1], r[2], r[3], r[4]))


ChangeRow = tuple[str, str, bool, Any, str, str, str, str | None, str | None]
"""(topic, actor, rollup, said_at, statement id, stance, change, previous id and stance)."""


async def feed_balance(engine: AsyncEngine) -> Counter[ChangeRow]:
    """The changes feed summed up: each change point added, less each one withdrawn."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT status, topic_id, actor_id, rollup, said_at, statement_id, stance,"
                " change, previous_statement_id, previous_stance FROM changes"
            )
        )
        balance: Counter[ChangeRow] = Counter()
        for status, *point in rows:
            balance[tuple(point)] += 1 if status == "added" else -1  # type: ignore[index]
    return +balance


def predicted_change_points(events: Iterable[Event]) -> Counter[ChangeRow]:
    """Every change point of every series, own and rolled-up, according to the pure fold."""
    rows = predicted_series_rows(events)
    stances = {(r[0], r[1], r[2], r[4]): r[5] for r in rows}
    return Counter(
        (*r[:7], r[7], stances[(r[0], r[1], r[2], r[7])] if r[7] else None)
        for r in rows
        if r[6] != "none"
    )

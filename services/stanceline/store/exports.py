"""Exports with provenance: which columns, which rows, in which order.

The column lists here are the only ones: the HTTP routes and ``stanceline export``
write whatever these produce through one writer (``store/export_files.py``).
Rows come in a fixed order, (said_at, statement id), then for changes the series
(its actor, own before rolled-up), so an export at a ``known_at`` is final: the
same request later gives the same bytes.

Without ``known_at`` rows are streamed off a server-side cursor on the projection;
the changes are the shift and flip points of every series as it stands, own and
rolled-up, read with the store's own series rules (``members.stands_on`` and
``change_kind``), not the feed's log, whose entries depend on arrival order. With
``known_at`` both come from the domain fold of what was recorded by then
(``store/export_source.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal

import sqlalchemy as sa

from stanceline.domain.stance import Change
from stanceline.store.db import ReadConnection
from stanceline.store.members import change_kind, member_actors, stands_on
from stanceline.store.queries import FAR_FUTURE, FAR_PAST

Kind = Literal["statements", "changes"]
ColumnType = Literal["text", "time", "float", "bool"]

STATEMENT_COLUMNS: tuple[tuple[str, ColumnType], ...] = (
    ("statement_id", "text"),
    ("actor_id", "text"),
    ("actor_name", "text"),
    ("topic_id", "text"),
    ("topic_title", "text"),
    ("said_at", "time"),
    ("stance", "text"),
    ("score", "float"),
    ("confidence", "float"),
    ("speech_act", "text"),
    ("certainty", "text"),
    ("speaker_name", "text"),
    ("speaker_role", "text"),
    ("quote", "text"),
    ("source_url", "text"),
    ("published_at", "time"),
    ("recorded_at", "time"),
    ("event_id", "text"),
    ("corrected", "bool"),
)
"""A statement as it reads, with the event that made it so: ``event_id`` is its latest
correction's, else its recording's, and ``recorded_at`` when stanceline appended it."""

CHANGE_COLUMNS: tuple[tuple[str, ColumnType], ...] = (
    ("series_actor_id", "text"),
    ("rollup", "bool"),
    ("change", "text"),
    ("previous_statement_id", "text"),
    *STATEMENT_COLUMNS,
)
"""A change point: the series it is on (``rollup``: the actor's sub-organisations merged
in; a leaf's rolled-up series is its own series and is listed once, as own), its kind
(shift or flip), the point before it, and the statement that made it."""

COLUMNS: dict[Kind, tuple[tuple[str, ColumnType], ...]] = {
    "statements": STATEMENT_COLUMNS,
    "changes": CHANGE_COLUMNS,
}

BATCH = 10_000
"""Rows per fetch from the cursor and per Parquet row group."""


@dataclass(frozen=True, slots=True)
class ExportFilter:
    topic_ids: Sequence[str] | None = None
    actor_ids: Sequence[str] | None = None
    include_descendants: bool = False
    """Each listed actor stands for itself and everything below it."""
    start: datetime | None = None
    stop: datetime | None = None
    as_of: datetime | None = None
    known_at: datetime | None = None

    @property
    def said_from(self) -> datetime:
        return self.start or FAR_PAST

    @property
    def said_until(self) -> datetime:
        return min(self.stop or FAR_FUTURE, self.as_of or FAR_FUTURE)

    def params(self) -> dict[str, Any]:
        return {
            "topic_ids": sorted(self.topic_ids or ()),
            "actor_ids": sorted(self.actor_ids or ()),
            "rollup": self.include_descendants,
            "start": self.said_from,
            "stop": self.said_until,
        }


_IN_SCOPE = (
    "SELECT m.actor_id FROM unnest(CAST(:actor_ids AS text[])) AS n(node)"
    f" CROSS JOIN LATERAL ({member_actors('n.node', ':rollup')}) m"
)
"""The actors a filter names: each listed one, and with ``rollup`` everyone below it."""

_STATEMENT_SELECT = """
    s.statement_id, s.actor_id, a.name, s.topic_id, t.title, s.said_at, s.stance, s.score,
    s.confidence, s.speech_act, s.certainty, s.speaker_name, s.speaker_role, s.quote,
    s.source_url, s.published_at, e.recorded_at, e.event_id, s.corrected_by IS NOT NULL
"""
_PROVENANCE = """
      LEFT JOIN actors a ON a.actor_id = s.actor_id
      LEFT JOIN topics t ON t.topic_id = s.topic_id
      LEFT JOIN events e ON e.event_id = coalesce(s.corrected_by, s.recorded_by)
"""
_SAID = "s.said_at BETWEEN CAST(:start AS timestamptz) AND CAST(:stop AS timestamptz)"


def _topics(alias: str) -> str:
    return f"{alias}.topic_id = ANY(CAST(:topic_ids AS text[]))"


_TOPIC = _topics("s")


@cache
def statements_query(topics: bool, actors: bool) -> sa.TextClause:
    where = ["s.visible", _SAID]
    if topics:
        where.append(_TOPIC)
    if actors:
        where.append(f"s.actor_id IN ({_IN_SCOPE})")
    return sa.text(
        f"""
        SELECT {_STATEMENT_SELECT} FROM statements s {_PROVENANCE}
         WHERE {" AND ".join(where)}
         ORDER BY s.said_at, s.statement_id
        """
    )


_KINDS = f"'{Change.SHIFT.value}', '{Change.FLIP.value}'"


@cache
def changes_query(topics: bool, actors: bool) -> sa.TextClause:
    # Whole series are read (a point's kind needs the point before it, which may lie
    # outside the range); the filters on said_at and the series' actor apply afterwards.
    visible = "SELECT * FROM statements v WHERE v.visible" + (
        f" AND {_topics('v')}" if topics else ""
    )
    placed = stands_on(f"({visible})", "r.statement_id, r.topic_id, r.said_at, r.stance")
    where = [_SAID, f"p.change IN ({_KINDS})"]
    if actors:
        where.append(f"p.series_actor IN ({_IN_SCOPE})")
    return sa.text(
        f"""
        WITH placed AS ({placed}), ranked AS (
            SELECT x.*, lag(x.stance) OVER w AS previous_stance,
                   lag(x.statement_id) OVER w AS previous_statement_id
              FROM placed x
            WINDOW w AS (PARTITION BY x.topic_id, x.series_actor, x.rollup
                         ORDER BY x.said_at, x.statement_id)
        ), kinds AS (
            SELECT r.*, {change_kind("r.previous_stance", "r.stance")} AS change FROM ranked r
        )
        SELECT p.series_actor, p.rollup, p.change, p.previous_statement_id, {_STATEMENT_SELECT}
          FROM kinds p JOIN statements s ON s.statement_id = p.statement_id {_PROVENANCE}
         WHERE {" AND ".join(where)}
         ORDER BY s.said_at, s.statement_id, p.series_actor, p.rollup
        """
    )


async def present_rows(
    conn: ReadConnection, kind: Kind, selection: ExportFilter
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The export's rows off the projection, streamed from a server-side cursor in
    batches of at most ``BATCH``, in ``COLUMNS[kind]`` order."""
    build = statements_query if kind == "statements" else changes_query
    query = build(selection.topic_ids is not None, selection.actor_ids is not None)
    async for batch in conn.stream(query, selection.params(), BATCH):
        yield batch

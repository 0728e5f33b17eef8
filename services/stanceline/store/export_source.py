"""Where an export's rows come from: the projection's cursor, or the fold at ``known_at``.

The projection holds only the present; what was known at K is the domain fold of
the events recorded by then (``known.known_projection``), the same fold every other
``known_at`` read uses, so a statement retracted or corrected after K is exported
as it was at K. The fold's rows are the same columns in the same order as the
present path's (``exports.COLUMNS``), so at a K after every commit both give the
same bytes. The fold holds the scope's statements in memory: an export at a
``known_at`` is as large as the scope it folds (the present path streams).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import sqlalchemy as sa

from stanceline.domain.catalogue import descendants
from stanceline.domain.facts import StatementBody
from stanceline.domain.projection import Projection
from stanceline.domain.stance import Change
from stanceline.store.db import ReadConnection
from stanceline.store.exports import BATCH, ExportFilter, Kind, present_rows
from stanceline.store.known import known_projection
from stanceline.store.tables import events


async def export_rows(
    conn: ReadConnection, kind: Kind, selection: ExportFilter
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The export's rows in batches of at most ``BATCH``, in ``exports.COLUMNS[kind]``
    order; ``selection.known_at`` should already be settled (``known.settled``)."""
    if selection.known_at is None:
        async for batch in present_rows(conn, kind, selection):
            yield batch
        return
    # A rolled-up series needs everyone below its actor, whatever the filter asks.
    projection = await known_projection(
        conn,
        selection.known_at,
        actors=selection.actor_ids,
        topics=selection.topic_ids,
        include_descendants=selection.include_descendants or kind == "changes",
    )
    rows = (
        _statements(projection, selection)
        if kind == "statements"
        else _changes(projection, selection)
    )
    for start in range(0, len(rows), BATCH):
        yield await _with_provenance(conn, projection, rows[start : start + BATCH])


_Keyed = tuple[tuple[Any, ...], str, StatementBody, tuple[Any, ...]]
"""(sort key, statement id, body, leading columns)."""


def _scope(projection: Projection, selection: ExportFilter) -> set[str] | None:
    if selection.actor_ids is None:
        return None
    if not selection.include_descendants:
        return set(selection.actor_ids)
    parents = projection.parents
    return set().union(*(descendants(parents, a) for a in selection.actor_ids))


def _wanted(body: StatementBody, selection: ExportFilter) -> bool:
    topics = selection.topic_ids
    return (topics is None or body.topic_id in topics) and (
        selection.said_from <= body.said_at <= selection.said_until
    )


def _statements(projection: Projection, selection: ExportFilter) -> list[_Keyed]:
    scope = _scope(projection, selection)
    rows = [
        ((body.said_at, sid), sid, body, ())
        for sid, body in projection.visible()
        if _wanted(body, selection) and (scope is None or body.actor_id in scope)
    ]
    return sorted(rows, key=lambda r: r[0])


def _changes(projection: Projection, selection: ExportFilter) -> list[_Keyed]:
    scope = _scope(projection, selection)
    parents = projection.parents
    rows = []
    for (actor, _topic, rollup), points in projection.series().items():
        if scope is not None and actor not in scope:
            continue
        if rollup and descendants(parents, actor) == {actor}:
            continue  # a leaf's rolled-up series is its own series, listed once as own
        for p in points:
            if p.change in (Change.SHIFT, Change.FLIP) and _wanted(p.body, selection):
                key = (p.body.said_at, p.statement_id, actor, rollup)
                lead = (actor, rollup, p.change.value, p.previous_statement_id)
                rows.append((key, p.statement_id, p.body, lead))
    return sorted(rows, key=lambda r: r[0])


async def _with_provenance(
    conn: ReadConnection, projection: Projection, rows: Iterable[_Keyed]
) -> list[tuple[Any, ...]]:
    """Each row's statement columns, with the event that made the statement what it was
    at K: its latest correction known then, else its recording."""
    made_by = {}
    for _, sid, _, _ in rows:
        state = projection.statements[sid]
        made_by[sid] = state.corrected_by[1] if state.corrected_by else state.recorded_by
    query = sa.select(events.c.event_id, events.c.recorded_at).where(
        events.c.event_id.in_(sorted({e for e in made_by.values() if e}))
    )
    recorded = {r.event_id: r.recorded_at for r in await conn.execute(query)}
    out = []
    for _, sid, b, lead in rows:
        actor, topic = projection.actors.get(b.actor_id), projection.topics.get(b.topic_id)
        event_id = made_by[sid]
        out.append(
            (
                *lead,
                sid,
                b.actor_id,
                actor.name if actor else None,
                b.topic_id,
                topic.title if topic else None,
                b.said_at,
                b.stance.value,
                b.score,
                b.confidence,
                b.speech_act,
                b.certainty,
                b.speaker_name,
                b.speaker_role,
                b.quote,
                b.source_url,
                b.published_at,
                recorded.get(event_id) if event_id else None,
                event_id,
                projection.statements[sid].corrected_by is not None,
            )
        )
    return out

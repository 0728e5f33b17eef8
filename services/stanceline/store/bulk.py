"""Every projection table built from ``events`` in a few set-based statements.

The live write path folds batch by batch in Python and recomputes series
tails; a rebuild starts from nothing, so the same rules are stated once
more, whole-table, in SQL: the latest correction and retraction by
(``time``, event id), the smallest event id among identical recordings, the
latest registration, actors and topics that are only named, the hierarchy's
closure, and the rolled-up series' tips. The rebuild tests hold the two to the same rows.

The statements read ``events`` through ``{events}`` (the live table, while
the rows go to whatever ``search_path`` finds first: the shadow schema) and
stop at ``:upto``, a position below which nothing can still commit.
Statements are built in ``parts`` disjoint slices (by a hash of the
statement id), so the caller can run the slices on several connections at
once. Series are not stored; only the rolled-up series' tips are, from
the built statements.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from stanceline.contract import (
    ACTOR_REGISTERED,
    STATEMENT_CORRECTED,
    STATEMENT_RECORDED,
    STATEMENT_RETRACTED,
    TOPIC_REGISTERED,
)
from stanceline.domain.stance import Stance, default_score
from stanceline.store.catalogue import rebuild_lineage
from stanceline.store.series import rebuild_all_tips

_LATEST = "ORDER BY {key}, time DESC, event_id DESC"
_SLICE = "(hashtext({key}) & 2147483647) % :parts = :part"
_STATEMENT_SLICE = _SLICE.format(key="statement_id")

_DEFAULT_SCORE = (
    "CASE d ->> 'stance' "
    + " ".join(f"WHEN '{s.value}' THEN {default_score(s)!r}" for s in Stance)
    + " END"
)
"""``domain.stance.default_score``, generated from it."""

_STATEMENTS = f"""
    INSERT INTO statements
        (statement_id, actor_id, topic_id, said_at, stance, score, confidence,
         speaker_name, speaker_role, quote, source_url, published_at, speech_act, certainty,
         recorded_by, corrected_time, corrected_by, retracted_time, retracted_by,
         retraction_reason)
    WITH picked AS (
        -- One pass over the statement events: per statement and type, the recording with
        -- the smallest event id, and the latest correction and retraction.
        SELECT DISTINCT ON (statement_id, type) statement_id, type, time, event_id, data
          FROM {{events}}
         WHERE type IN ('{STATEMENT_RECORDED}', '{STATEMENT_CORRECTED}',
                        '{STATEMENT_RETRACTED}')
           AND position <= :upto AND {_STATEMENT_SLICE}
         ORDER BY statement_id, type,
                  CASE WHEN type = '{STATEMENT_RECORDED}' THEN event_id END,
                  time DESC, event_id DESC
    ), folded AS (
        SELECT statement_id,
               max(event_id) FILTER (WHERE type = '{STATEMENT_RECORDED}') AS recorded_by,
               max(time) FILTER (WHERE type = '{STATEMENT_CORRECTED}') AS corrected_time,
               max(event_id) FILTER (WHERE type = '{STATEMENT_CORRECTED}') AS corrected_by,
               max(time) FILTER (WHERE type = '{STATEMENT_RETRACTED}') AS retracted_time,
               max(event_id) FILTER (WHERE type = '{STATEMENT_RETRACTED}') AS retracted_by,
               max(data ->> 'reason') FILTER (WHERE type = '{STATEMENT_RETRACTED}') AS reason,
               coalesce((array_agg(data) FILTER (WHERE type = '{STATEMENT_CORRECTED}'))[1],
                        (array_agg(data) FILTER (WHERE type = '{STATEMENT_RECORDED}'))[1]) AS d
          FROM picked
         GROUP BY statement_id
    )
    SELECT statement_id,
           d ->> 'actor_id', d ->> 'topic_id', (d ->> 'said_at')::timestamptz, d ->> 'stance',
           -- Defaults only for a body: a statement known only by its retraction has none.
           CASE WHEN d IS NOT NULL THEN
               coalesce((d ->> 'score')::float8, {_DEFAULT_SCORE}) END,
           CASE WHEN d IS NOT NULL THEN coalesce((d ->> 'confidence')::float8, 1.0) END,
           d -> 'speaker' ->> 'name', d -> 'speaker' ->> 'role', d ->> 'quote',
           d ->> 'source_url', (d ->> 'published_at')::timestamptz,
           d ->> 'speech_act', d ->> 'certainty',
           recorded_by, corrected_time, corrected_by, retracted_time, retracted_by, reason
      FROM folded
"""

_ACTORS = f"""
    INSERT INTO actors
        (actor_id, name, kind, parent_id, aliases, registered_time, registered_by)
    WITH registered AS (
        SELECT DISTINCT ON (actor_id) actor_id, time, event_id, data
          FROM {{events}} WHERE type = '{ACTOR_REGISTERED}' AND position <= :upto
         {_LATEST.format(key="actor_id")}
    ), named AS (
        SELECT actor_id FROM {{events}}
         WHERE type IN ('{STATEMENT_RECORDED}', '{STATEMENT_CORRECTED}') AND position <= :upto
        UNION
        SELECT data ->> 'parent_id' FROM {{events}}
         WHERE type = '{ACTOR_REGISTERED}' AND position <= :upto
           AND data ->> 'parent_id' IS NOT NULL
    )
    SELECT actor_id, data ->> 'name', data ->> 'kind', data ->> 'parent_id',
           coalesce(data -> 'aliases', '[]'::jsonb), time, event_id
      FROM registered
    UNION ALL
    SELECT n.actor_id, n.actor_id, NULL, NULL, '[]'::jsonb, NULL, NULL
      FROM named n
     WHERE NOT EXISTS (SELECT 1 FROM registered r WHERE r.actor_id = n.actor_id)
"""

_TOPICS = f"""
    INSERT INTO topics (topic_id, title, kind, description, registered_time, registered_by)
    WITH registered AS (
        SELECT DISTINCT ON (topic_id) topic_id, time, event_id, data
          FROM {{events}} WHERE type = '{TOPIC_REGISTERED}' AND position <= :upto
         {_LATEST.format(key="topic_id")}
    ), named AS (
        SELECT DISTINCT topic_id FROM {{events}}
         WHERE type IN ('{STATEMENT_RECORDED}', '{STATEMENT_CORRECTED}') AND position <= :upto
    )
    SELECT topic_id, data ->> 'title', data ->> 'kind', data ->> 'description', time, event_id
      FROM registered
    UNION ALL
    SELECT n.topic_id, n.topic_id, NULL, NULL, NULL, NULL
      FROM named n
     WHERE NOT EXISTS (SELECT 1 FROM registered r WHERE r.topic_id = n.topic_id)
"""


async def _bulk(conn: AsyncConnection, sql: str, params: dict[str, int]) -> None:
    # Whole-table sorts: let them run in memory rather than spill to disk.
    await conn.execute(sa.text("SET LOCAL work_mem = '256MB'"))
    await conn.execute(sa.text(sql), params)


async def build_statements(
    conn: AsyncConnection, events_table: str, upto: int, part: int, parts: int
) -> None:
    """One slice of ``statements`` from the events at positions ``<= upto``.

    ``events_table`` is a schema-qualified name chosen by the caller, never user input.
    """
    sql = _STATEMENTS.format(events=events_table)
    await _bulk(conn, sql, {"upto": upto, "part": part, "parts": parts})


async def build_catalogue(conn: AsyncConnection, events_table: str, upto: int) -> None:
    """``actors``, ``topics`` and the hierarchy's closure (small: one go)."""
    for sql in (_ACTORS, _TOPICS):
        await _bulk(conn, sql.format(events=events_table), {"upto": upto})
    await rebuild_lineage(conn)


async def build_tips(conn: AsyncConnection) -> None:
    """``series_tips``, once ``statements`` and the lineage are built."""
    await rebuild_all_tips(conn)


async def count_events(conn: AsyncConnection, events_table: str, upto: int) -> int:
    sql = f"SELECT count(*) FROM {events_table} WHERE position <= :upto"
    return int(await conn.scalar(sa.text(sql), {"upto": upto}) or 0)

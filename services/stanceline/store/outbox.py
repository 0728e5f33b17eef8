"""The webhook outbox: messages written with the change points they tell of, and taken
by dispatchers one series at a time.

``fill`` runs in the write path's transaction, after the feed is written: every feed
entry this transaction wrote, for every active subscription that watches its series
and receives its kind, becomes a message, or none of them does. A rebuild writes no
feed entries and a replay of stored events writes none either (duplicates change
nothing), so neither sends anything.

``claim`` takes due messages with ``FOR UPDATE SKIP LOCKED`` and holds their row locks
until the dispatcher records the outcome and commits: several dispatchers never take
one message twice, and a dispatcher killed mid-send leaves its messages pending for the
next. A message waits while an earlier message of its subscription and series is
pending (order per series).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from stanceline.store import locks
from stanceline.store.db import ReadConnection
from stanceline.store.members import watches

_WATCHED = (
    f"{watches('s.actors', 's.include_descendants', 'c.actor_id', 'c.rollup')}"
    " AND (cardinality(s.topics) = 0 OR c.topic_id = ANY(s.topics))"
    " AND (c.status || ':' || c.change) = ANY(s.receives)"
)

_SEQUENCE = """
    coalesce((SELECT max(o.sequence) FROM webhook_outbox o
               WHERE o.subscription_id = s.id AND o.topic_id = c.topic_id
                 AND o.actor_id = c.actor_id AND o.rollup = c.rollup), 0)
    + row_number() OVER (PARTITION BY s.id, c.topic_id, c.actor_id, c.rollup ORDER BY c.id)
"""
"""Per subscription and series, one more than the last message: writers of one series
hold its lock (the write path's series locks, ``replay``'s), so no two take a number."""

_FILL = sa.text(
    f"""
    INSERT INTO webhook_outbox (subscription_id, change_id, topic_id, actor_id, rollup, sequence)
    SELECT s.id, c.id, c.topic_id, c.actor_id, c.rollup, {_SEQUENCE}
      FROM webhook_subscriptions s
      JOIN changes c ON c.xact_id = (pg_current_xact_id_if_assigned())::text::bigint
       AND {_WATCHED}
     WHERE s.disabled_at IS NULL
    ON CONFLICT (subscription_id, change_id) DO NOTHING
    """
)


async def fill(conn: AsyncConnection) -> None:
    """Messages for the feed entries this transaction wrote (none without subscriptions:
    the statement reads an empty table)."""
    await conn.execute(_FILL)


_REPLAY_SERIES = f"""
    SELECT c.* FROM changes c JOIN webhook_subscriptions s ON s.id = :sid AND {_WATCHED}
     WHERE c.recorded_at >= :since AND (CAST(:until AS timestamptz) IS NULL
                                       OR c.recorded_at < :until)
"""

_REPLAY_LOCKS = sa.text(
    locks.sorted_locks(
        f"SELECT {locks.series_key('c.topic_id', 'c.actor_id')} AS key FROM ({_REPLAY_SERIES}) c"
    )
)

_REPLAY = sa.text(
    f"""
    WITH wanted AS ({_REPLAY_SERIES}),
    requeued AS (
        UPDATE webhook_outbox o
           SET state = 'pending', attempts = 0, next_attempt_at = clock_timestamp(),
               finished_at = NULL
          FROM wanted w
         WHERE o.subscription_id = :sid AND o.change_id = w.id
        RETURNING 1
    ),
    added AS (
        INSERT INTO webhook_outbox
               (subscription_id, change_id, topic_id, actor_id, rollup, sequence)
        SELECT s.id, c.id, c.topic_id, c.actor_id, c.rollup, {_SEQUENCE}
          FROM wanted c JOIN webhook_subscriptions s ON s.id = :sid
         WHERE NOT EXISTS (SELECT 1 FROM webhook_outbox o
                            WHERE o.subscription_id = :sid AND o.change_id = c.id)
        ON CONFLICT (subscription_id, change_id) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM requeued) + (SELECT count(*) FROM added)
    """
)


async def replay(
    conn: AsyncConnection, subscription_id: str, since: datetime, until: datetime | None
) -> int:
    """Send again what the subscription would have received of the feed entries recorded
    in [since, until): its messages go back to pending, under their ids; entries it never
    had a message for (recorded before it existed) get one. How many were queued."""
    params = {"sid": subscription_id, "since": since, "until": until}
    # Messages are numbered per series under the series' lock, as the write path does.
    await locks.lock_hierarchy(conn, exclusive=False)
    await conn.execute(_REPLAY_LOCKS, params)
    return int(await conn.scalar(_REPLAY, params) or 0)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message taken for sending, with the feed entry it tells of."""

    outbox_id: int
    subscription_id: str
    url: str
    secret: str
    sequence: int
    attempts: int
    entry: dict[str, Any]


_CLAIM = sa.text(
    """
    SELECT o.id AS outbox_id, o.subscription_id, o.sequence, o.attempts, s.url, s.secret,
           c.id AS change_id, c.xact_id, c.status, c.actor_id, c.topic_id, c.rollup,
           c.statement_id, c.said_at, c.stance, c.previous_stance, c.previous_statement_id,
           c.change, c.recorded_at
      FROM webhook_outbox o
      JOIN webhook_subscriptions s ON s.id = o.subscription_id AND s.disabled_at IS NULL
      JOIN changes c ON c.id = o.change_id
     WHERE o.state = 'pending' AND o.next_attempt_at <= clock_timestamp()
       AND NOT EXISTS (
            SELECT 1 FROM webhook_outbox e
             WHERE e.subscription_id = o.subscription_id AND e.topic_id = o.topic_id
               AND e.actor_id = o.actor_id AND e.rollup = o.rollup
               AND e.sequence < o.sequence AND e.state = 'pending')
     ORDER BY o.next_attempt_at, o.id
     LIMIT :limit
       FOR UPDATE OF o SKIP LOCKED
    """
)


async def claim(conn: AsyncConnection, limit: int) -> list[Claimed]:
    """Due messages, at most one per subscription and series, locked until commit."""
    rows = await conn.execute(_CLAIM, {"limit": limit})
    return [
        Claimed(
            outbox_id=r.outbox_id,
            subscription_id=r.subscription_id,
            url=r.url,
            secret=r.secret,
            sequence=r.sequence,
            attempts=r.attempts,
            entry=dict(r._mapping),
        )
        for r in rows
    ]


_ATTEMPT = sa.text(
    """
    INSERT INTO webhook_attempts (outbox_id, attempted_at, status_code, latency_ms, error)
    VALUES (:outbox_id, :attempted_at, :status_code, :latency_ms, :error)
    """
)

_OUTCOME = sa.text(
    """
    UPDATE webhook_outbox
       SET attempts = attempts + 1, state = :state,
           next_attempt_at = CASE WHEN :state = 'pending'
                                  THEN clock_timestamp() + make_interval(secs => :delay)
                                  ELSE next_attempt_at END,
           finished_at = CASE WHEN :state = 'pending' THEN NULL ELSE clock_timestamp() END
     WHERE id = :outbox_id
    """
)


@dataclass(frozen=True, slots=True)
class Attempt:
    outbox_id: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """An attempt, and where it moves its message: ``delivered``, ``failed``, or
    ``pending`` again in ``delay`` seconds from now."""

    attempt: Attempt
    state: str
    delay: float = 0.0


async def record(conn: AsyncConnection, outcomes: list[Outcome]) -> None:
    """Log a batch's attempts and move their messages on (two pipelined statements)."""
    if not outcomes:
        return
    await conn.execute(
        _ATTEMPT,
        [
            {
                "outbox_id": o.attempt.outbox_id,
                "attempted_at": o.attempt.attempted_at,
                "status_code": o.attempt.status_code,
                "latency_ms": o.attempt.latency_ms,
                "error": o.attempt.error,
            }
            for o in outcomes
        ],
    )
    await conn.execute(
        _OUTCOME,
        [
            {"outbox_id": o.attempt.outbox_id, "state": o.state, "delay": float(o.delay)}
            for o in outcomes
        ],
    )


_DEPTH = sa.text(
    "SELECT count(*) AS depth, min(o.created_at) AS oldest FROM webhook_outbox o"
    " JOIN webhook_subscriptions s ON s.id = o.subscription_id AND s.disabled_at IS NULL"
    " WHERE o.state = 'pending'"
)


async def depth(conn: AsyncConnection | ReadConnection) -> tuple[int, datetime | None]:
    """Messages waiting, and when the oldest of them was written."""
    row = (await conn.execute(_DEPTH)).one()
    return int(row.depth), row.oldest

"""The statements an agreement network is computed from, on both time axes.

A network's inputs are the visible statements (corrections applied, retractions
removed) on the asked topics with ``said_at`` in the range, each attributed to the
node it counts for: its own actor, or, with ``include_descendants``, every listed
actor it stands below (``members.member_actors``: the same relation a rolled-up
series is read from). With ``known_at`` they come from the domain fold of the events
recorded by then (``known.known_projection``) and the hierarchy as it was known then.
The formulas themselves are ``domain/network.py``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import sqlalchemy as sa

from stanceline.domain.catalogue import descendants
from stanceline.domain.network import Said
from stanceline.domain.stance import Stance
from stanceline.store.db import ReadConnection
from stanceline.store.known import known_projection
from stanceline.store.members import member_actors

_STANCES = {s.value: s for s in Stance}
"""A stored stance to its enum: a dict look-up costs less than ``Stance(value)``."""


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    name: str
    kind: str | None


@dataclass(frozen=True, slots=True)
class NetworkInput:
    nodes: list[Node]
    """In id order: the listed actors, or every actor with a statement in scope."""
    said: list[Said]


_ROWS = """
    SELECT 0 AS part, {node} AS node, s.topic_id, s.said_at, s.statement_id, s.stance,
           NULL AS name, NULL AS kind
      FROM {source}
     WHERE s.visible AND s.topic_id = ANY(CAST(:topic_ids AS text[]))
       AND s.said_at BETWEEN CAST(:start AS timestamptz) AND CAST(:stop AS timestamptz)
"""


@cache
def _query(listed: bool) -> sa.TextClause:
    if listed:
        source = (
            "unnest(CAST(:actor_ids AS text[])) AS n(node)"
            f" CROSS JOIN LATERAL ({member_actors('n.node', ':rollup')}) m"
            " JOIN statements s ON s.actor_id = m.actor_id"
        )
        rows = _ROWS.format(node="n.node", source=source)
        named = "SELECT node FROM unnest(CAST(:actor_ids AS text[])) AS n(node)"
    else:
        rows = _ROWS.format(node="s.actor_id", source="statements s")
        named = "SELECT DISTINCT node FROM rows"
    return sa.text(
        f"""
        WITH rows AS ({rows})
        SELECT * FROM rows
        UNION ALL
        SELECT 1, a.actor_id, NULL, NULL, NULL, NULL, a.name, a.kind
          FROM actors a WHERE a.actor_id IN ({named})
        """
    )


async def network_input(
    conn: ReadConnection,
    *,
    topic_ids: Sequence[str],
    actor_ids: Sequence[str] | None,
    include_descendants: bool,
    start: datetime,
    stop: datetime,
    known_at: datetime | None,
) -> NetworkInput:
    """Nodes and attributed statements with start ≤ said_at ≤ stop (``stop`` already
    capped by ``as_of``), in one statement on the present projection."""
    if known_at is not None:
        return await _known_input(
            conn, topic_ids, actor_ids, include_descendants, start, stop, known_at
        )
    params = {
        "topic_ids": sorted(topic_ids),
        "actor_ids": sorted(actor_ids or ()),
        "rollup": include_descendants,
        "start": start,
        "stop": stop,
    }
    said: list[Said] = []
    names: dict[str, Node] = {}
    for row in await conn.only(_query(actor_ids is not None), params):
        if row[0] == 0:
            said.append(Said(row[1], row[2], row[3], row[4], _STANCES[row[5]]))
        else:
            names[row[1]] = Node(row[1], row[6], row[7])
    ids = set(actor_ids) if actor_ids is not None else {s.node for s in said}
    return NetworkInput([names.get(i, Node(i, i, None)) for i in sorted(ids)], said)


async def _known_input(
    conn: ReadConnection,
    topic_ids: Sequence[str],
    actor_ids: Sequence[str] | None,
    include_descendants: bool,
    start: datetime,
    stop: datetime,
    known_at: datetime,
) -> NetworkInput:
    projection = await known_projection(
        conn,
        known_at,
        actors=actor_ids,
        topics=topic_ids,
        include_descendants=include_descendants,
    )
    parents = projection.parents
    topics = set(topic_ids)
    counts_for: dict[str, list[str]] = {}  # empty: each actor counts for itself
    if actor_ids is not None:
        for node in actor_ids:
            members = descendants(parents, node) if include_descendants else {node}
            for member in members:
                counts_for.setdefault(member, []).append(node)
    said = [
        Said(node, body.topic_id, body.said_at, sid, body.stance)
        for sid, body in projection.visible()
        if body.topic_id in topics and start <= body.said_at <= stop
        for node in (
            counts_for.get(body.actor_id, []) if actor_ids is not None else [body.actor_id]
        )
    ]
    ids = set(actor_ids) if actor_ids is not None else {s.node for s in said}
    nodes = []
    for i in sorted(ids):
        actor = projection.actors.get(i)
        nodes.append(Node(i, actor.name, actor.kind) if actor else Node(i, i, None))
    return NetworkInput(nodes, said)

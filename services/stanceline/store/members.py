"""The series rules in SQL: which statements a series holds, and each point's change kind.

No series is stored. A visible statement is the point of its actor's own
series; the series of an actor *with descendants* merges the own series of
every actor below it (``actor_lineage``, depth 0 included). Every query
that reads a series, on the write path and the read path alike, composes
these fragments, so membership is written once in SQL; the property tests
hold it to the domain's ``catalogue.series_of`` and ``timeline``.

A merged series is read as one ordered probe per member's own series (a
lateral ``LIMIT``), then the top of the union: each probe is a few index
pages, where a join sorted afterwards would read every point of the tree.
"""

from __future__ import annotations

from itertools import product

from stanceline.domain.stance import Stance, change_between


def member_actors(actor: str, rollup: str) -> str:
    """The actors whose own series make up series (``actor``, ``rollup``): SQL
    expressions for both, so a caller can pass bind parameters or columns."""
    return (
        "SELECT l.actor_id FROM actor_lineage l"
        f" WHERE l.ancestor_id = {actor} AND ({rollup} OR l.depth = 0)"
    )


def has_descendants(actor: str) -> str:
    """Whether ``actor`` has anyone below it: then its rolled-up series is kept apart from
    its own; a leaf's rolled-up series *is* its own series."""
    # An alias no caller uses: the caller's ``actor`` expression may name its own tables.
    return (
        "EXISTS (SELECT 1 FROM actor_lineage below"
        f" WHERE below.ancestor_id = {actor} AND below.depth > 0)"
    )


def stands_on(rows: str, columns: str) -> str:
    """Each row of ``rows`` (a relation with an ``actor_id`` column) on every series a point
    of that actor's own series stands on: ``columns`` of the row, then the series' actor
    and ``rollup``. That is ``catalogue.series_of`` less the rolled-up series of a leaf,
    which is its own series; ``member_actors`` is the same relation from the series' side.
    A join rather than a lateral probe per row: a batch places hundreds of points."""
    return (
        f"SELECT {columns}, r.actor_id AS series_actor, false AS rollup FROM {rows} r"
        " UNION ALL"
        f" SELECT {columns}, l.ancestor_id, true FROM {rows} r"
        " JOIN actor_lineage l ON l.actor_id = r.actor_id"
        f" WHERE {has_descendants('l.ancestor_id')}"
    )


def own_points(topic: str, actor: str, where: str, order: str, limit: str) -> str:
    """Points of one own series in key order (``order``: ASC or DESC), index-only."""
    return (
        "SELECT s.said_at, s.statement_id, s.stance FROM statements s"
        f" WHERE s.visible AND s.topic_id = {topic} AND s.actor_id = {actor} AND {where}"
        f" ORDER BY s.said_at {order}, s.statement_id {order} LIMIT {limit}"
    )


def series_points(topic: str, actor: str, rollup: str, where: str, order: str, limit: str) -> str:
    """Points of series (``topic``, ``actor``, ``rollup``) in key order: at most ``limit``
    of them, filtered by ``where`` over ``s.said_at`` and ``s.statement_id``."""
    probe = own_points(topic, "m.actor_id", where, order, limit)
    return (
        f"SELECT p.said_at, p.statement_id, p.stance FROM ({member_actors(actor, rollup)}) m"
        f" CROSS JOIN LATERAL ({probe}) p"
        f" ORDER BY p.said_at {order}, p.statement_id {order} LIMIT {limit}"
    )


def change_kind(previous: str, stance: str) -> str:
    """``domain.stance.change_between`` as a SQL expression, generated from it."""
    cases = " ".join(
        f"WHEN {previous} = '{p.value}' AND {stance} = '{s.value}'"
        f" THEN '{change_between(p, s).value}'"
        for p, s in product(Stance, Stance)
    )
    first = change_between(None, Stance.SUPPORT).value
    return f"(CASE WHEN {previous} IS NULL THEN '{first}' {cases} END)"


def watches(actors: str, descendants: str, actor: str, rollup: str) -> str:
    """Whether a watcher of ``actors`` (a text array; empty: every actor), with or without
    descendants, watches series (``actor``, ``rollup``) of the changes feed: with them an
    actor's rolled-up series (a leaf's is its own points, fed under ``rollup`` too), without
    them its own series. The same choice a history's ``include_descendants`` makes."""
    return f"(cardinality({actors}) = 0 OR {actor} = ANY({actors})) AND {rollup} = {descendants}"

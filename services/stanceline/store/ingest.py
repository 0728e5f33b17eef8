"""One batch of accepted and rejected entries → one transaction's worth of writes.

The caller owns the transaction (the projector commits, then acks). Within
it: take locks in the global order (hierarchy, statements, series), drop
duplicates and conflicts, append the new events, dead-letter the rejects,
fold the new facts into the projection tables with the domain's rules, and
recompute the tails of the series they touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from stanceline.contract import Event
from stanceline.domain.catalogue import lineage, makes_cycle, wins
from stanceline.domain.facts import (
    ActorRegistered,
    Fact,
    StatementBody,
    StatementCorrected,
    StatementRecorded,
    StatementRetracted,
    TopicRegistered,
    Version,
    version_of,
)
from stanceline.domain.statements import (
    StatementState,
    apply_statement_fact,
    rerecording_conflicts,
)
from stanceline.store import (
    append,
    catalogue,
    dead_letters,
    locks,
    outbox,
    series,
    statement_rows,
)
from stanceline.store.records import Accepted, BatchReport, Rejected
from stanceline.store.translate import fact_of

StatementFacts = StatementRecorded | StatementCorrected | StatementRetracted


async def store_batch(
    conn: AsyncConnection,
    accepted: Sequence[Accepted],
    rejected: Sequence[Rejected] = (),
    *,
    stream: str | None = None,
) -> BatchReport:
    report = BatchReport()
    dead = list(rejected)
    fresh = _first_of_each_id(accepted, dead, report)
    facts = {item.event.id: fact_of(item.event) for item in fresh}

    await locks.lock_hierarchy(
        conn, exclusive=any(isinstance(f, ActorRegistered) for f in facts.values())
    )
    statement_ids = {f.statement_id for f in facts.values() if isinstance(f, StatementFacts)}
    await locks.lock_keys(conn, "statement", statement_ids)

    stored = await append.stored_digests(conn, list(facts))
    states = await statement_rows.load_states(conn, statement_ids)
    # Only a statement already recorded can be re-recorded with another body.
    recorded = await statement_rows.recorded_bodies(
        conn,
        {
            f.statement_id
            for f in facts.values()
            if isinstance(f, StatementRecorded)
            and (state := states.get(f.statement_id)) is not None
            and state.recorded_by is not None
        },
    )
    hierarchy = await _hierarchy_if_needed(conn, facts.values())

    keep: list[Accepted] = []
    for item in fresh:
        reason = _rejection(item, facts[item.event.id], stored, recorded, hierarchy)
        if reason == "duplicate":
            report.duplicates += 1
        elif reason is not None:
            dead.append(_rejected(item, reason))
        else:
            keep.append(item)

    inserted = await append.append_events(conn, keep)
    report.duplicates += len(keep) - len(inserted)
    report.appended = len(inserted)
    await dead_letters.record(conn, stream, _one_per_entry(dead))
    report.dead_lettered = len(dead)
    report.dead_letter_fields.update(item.field for item in dead)

    new_facts = [facts[item.event.id] for item in keep if item.event.id in inserted]
    await _project(conn, new_facts, states)
    if new_facts:
        # Flip alerts commit with the feed entries they tell of, or not at all.
        await outbox.fill(conn)
    return report


async def project_stored(conn: AsyncConnection, events: Sequence[Event]) -> None:
    """Fold events that are already in ``events`` into the projection tables.

    The projection half of ``store_batch``, for a rebuild's catch-up: no
    appends, no dead letters, no locks (a rebuild writes tables nobody else
    writes). Applying an event twice changes nothing, so catch-ups may overlap.
    """
    facts = [fact_of(e) for e in events]
    statement_ids = {f.statement_id for f in facts if isinstance(f, StatementFacts)}
    await _project(conn, facts, await statement_rows.load_states(conn, statement_ids))


def _first_of_each_id(
    items: Sequence[Accepted], dead: list[Rejected], report: BatchReport
) -> list[Accepted]:
    """Within one batch, the first copy of an event id counts; later copies are
    duplicates, or conflicts when their body differs."""
    first: dict[str, tuple[Accepted, str]] = {}
    for item in items:
        d = item.digest
        seen = first.get(item.event.id)
        if seen is None:
            first[item.event.id] = (item, d)
        elif seen[1] == d:
            report.duplicates += 1
        else:
            dead.append(_rejected(item, "id: conflict: event id already used with another body"))
    return [item for item, _ in first.values()]


Hierarchy = tuple[catalogue.Parents, dict[str, Version | None]]


async def _hierarchy_if_needed(conn: AsyncConnection, facts: Iterable[Fact]) -> Hierarchy | None:
    """Parents and registration versions, loaded only for batches that register actors."""
    if not any(isinstance(f, ActorRegistered) for f in facts):
        return None
    return await catalogue.load_hierarchy(conn)


def _rejection(
    item: Accepted,
    fact: Fact,
    stored: dict[str, str],
    recorded: dict[str, StatementBody],
    hierarchy: Hierarchy | None,
) -> str | None:
    event_id = item.event.id
    if event_id in stored:
        if stored[event_id] == item.digest:
            return "duplicate"
        return "id: conflict: event id already used with another body"
    if isinstance(fact, StatementRecorded):
        if rerecording_conflicts(recorded.get(fact.statement_id), fact.body):
            return (
                "data.statement_id: conflict: statement already recorded with another body"
                " (publish stanceline.statement.corrected.v1 instead)"
            )
        recorded.setdefault(fact.statement_id, fact.body)
    if isinstance(fact, ActorRegistered) and hierarchy is not None:
        parents, versions = hierarchy
        if not wins(versions.get(fact.actor_id), version_of(fact)):
            return None  # an older registration changes nothing, so it cannot make a cycle
        if makes_cycle(parents, fact.actor_id, fact.parent_id):
            return "data.parent_id: registration would make the actor hierarchy a cycle"
        parents[fact.actor_id] = fact.parent_id
        versions[fact.actor_id] = version_of(fact)
    return None


def _rejected(item: Accepted, reason: str) -> Rejected:
    field, _, _ = reason.partition(":")
    return Rejected(item.raw, reason, field, item.stream_entry_id, item.event.id)


def _one_per_entry(items: list[Rejected]) -> list[Rejected]:
    seen: set[str] = set()
    result = []
    for item in items:
        if item.stream_entry_id is None or item.stream_entry_id not in seen:
            result.append(item)
            if item.stream_entry_id is not None:
                seen.add(item.stream_entry_id)
    return result


async def _project(
    conn: AsyncConnection,
    facts: Sequence[Fact],
    states: dict[str, StatementState],
) -> None:
    registrations = [f for f in facts if isinstance(f, ActorRegistered)]
    statement_facts = [f for f in facts if isinstance(f, StatementFacts)]
    before_bodies = {sid: s.effective for sid, s in states.items()}
    for fact in sorted(statement_facts, key=version_of):
        states[fact.statement_id] = apply_statement_fact(states.get(fact.statement_id), fact)
    touched = {f.statement_id for f in statement_facts}

    # Every new body names its actor and topic, whether or not it is the one that reads
    # now: the catalogue must not depend on the order corrections arrived in.
    bodies = [f.body for f in statement_facts if not isinstance(f, StatementRetracted)]
    await catalogue.ensure_actors(
        conn,
        [b.actor_id for b in bodies] + [f.parent_id for f in registrations if f.parent_id],
    )
    await catalogue.ensure_topics(conn, [b.topic_id for b in bodies])
    await catalogue.upsert_topics(conn, [f for f in facts if isinstance(f, TopicRegistered)])

    # The series as the hierarchy stood: feed, then save the statements they now hold.
    changed = [
        (sid, old, new)
        for sid in sorted(touched)
        if _point_of(old := before_bodies.get(sid)) != _point_of(new := states[sid].effective)
    ]
    await series.update(conn, changed)
    await statement_rows.save_states(
        conn,
        [statement_rows.row_from_state(states[s]) for s in touched],
    )
    if registrations:
        await _regroup(conn, registrations)


async def _regroup(conn: AsyncConnection, registrations: Sequence[ActorRegistered]) -> None:
    """Apply registrations; where the hierarchy moved, re-merge the rolled-up series above.

    Registering actors before they speak, the usual case, feeds nothing: only the
    tips of the series above them are looked at again.
    """
    before, _ = await catalogue.load_hierarchy(conn)
    await catalogue.upsert_actors(conn, registrations)
    after, _ = await catalogue.load_hierarchy(conn)
    moved = {a for a, parent in after.items() if a not in before or before[a] != parent}
    if not moved:
        return
    above = {
        ancestor
        for parents in (before, after)
        for actor in moved
        if actor in parents
        for ancestor in lineage(parents, actor)[1:]
    }
    old_series = (
        await series.whole_rollups(conn, above)
        if await series.any_points_below(conn, moved)
        else None
    )
    await catalogue.rebuild_lineage(conn)
    await series.regroup(conn, above, old_series)


def _point_of(body: StatementBody | None) -> tuple[object, ...] | None:
    """What a series point depends on: a change in quote or score leaves series alone."""
    return None if body is None else (body.actor_id, body.topic_id, body.said_at, body.stance)

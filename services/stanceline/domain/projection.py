"""The whole projection as one pure fold: the specification the store must match.

The Postgres projector computes the same thing incrementally in SQL; this
fold is what property tests, the fault-injection oracle and the rebuild
check compare it against. Its state is a plain accumulator owned by the
fold, never shared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from stanceline.domain.catalogue import (
    Actor,
    Topic,
    descendants,
    lineage,
    makes_cycle,
    registered_actor,
    registered_topic,
    series_of,
    unregistered_actor,
    unregistered_topic,
    wins,
)
from stanceline.domain.facts import (
    ActorRegistered,
    Fact,
    StatementBody,
    StatementRecorded,
    StatementRetracted,
    TopicRegistered,
    version_of,
)
from stanceline.domain.rollup import current
from stanceline.domain.statements import (
    StatementState,
    apply_statement_fact,
    rerecording_conflicts,
)
from stanceline.domain.timeline import Point, timeline

SeriesKey = tuple[str, str, bool]
"""(actor id, topic id, include descendants)."""


@dataclass
class Projection:
    statements: dict[str, StatementState] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)
    topics: dict[str, Topic] = field(default_factory=dict)
    seen: dict[str, Fact] = field(default_factory=dict)
    recorded: dict[str, StatementBody] = field(default_factory=dict)
    """Each statement's body as first recorded, to reject a conflicting re-recording."""

    def apply(self, fact: Fact) -> str | None:
        """Fold one fact in; return a rejection reason instead when it must be dead-lettered."""
        if fact.event_id in self.seen:
            return None if self.seen[fact.event_id] == fact else "conflict: event id reused"
        reason = self._rejection(fact)
        if reason is None:
            self.seen[fact.event_id] = fact
            self._fold(fact)
        return reason

    def _rejection(self, fact: Fact) -> str | None:
        if isinstance(fact, StatementRecorded) and rerecording_conflicts(
            self.recorded.get(fact.statement_id), fact.body
        ):
            return "conflict: statement already recorded with another body"
        if isinstance(fact, ActorRegistered):
            existing = self.actors.get(fact.actor_id)
            if wins(existing.registered_by if existing else None, version_of(fact)) and makes_cycle(
                self.parents, fact.actor_id, fact.parent_id
            ):
                return "data.parent_id: registration would make the hierarchy a cycle"
        return None

    def _fold(self, fact: Fact) -> None:
        match fact:
            case ActorRegistered():
                current = self.actors.get(fact.actor_id)
                if wins(current.registered_by if current else None, version_of(fact)):
                    self.actors[fact.actor_id] = registered_actor(fact)
                if fact.parent_id is not None:
                    self._know_actor(fact.parent_id)
            case TopicRegistered():
                existing = self.topics.get(fact.topic_id)
                if wins(existing.registered_by if existing else None, version_of(fact)):
                    self.topics[fact.topic_id] = registered_topic(fact)
            case _:
                if isinstance(fact, StatementRecorded):
                    self.recorded.setdefault(fact.statement_id, fact.body)
                state = apply_statement_fact(self.statements.get(fact.statement_id), fact)
                self.statements[fact.statement_id] = state
                # Every body names its actor and topic, winning or not: otherwise which ids
                # exist would depend on the order corrections arrived in.
                if not isinstance(fact, StatementRetracted):
                    self._know_actor(fact.body.actor_id)
                    self._know_topic(fact.body.topic_id)

    def _know_actor(self, actor_id: str) -> None:
        self.actors.setdefault(actor_id, unregistered_actor(actor_id))

    def _know_topic(self, topic_id: str) -> None:
        self.topics.setdefault(topic_id, unregistered_topic(topic_id))

    @property
    def parents(self) -> dict[str, str | None]:
        return {a.actor_id: a.parent_id for a in self.actors.values()}

    def visible(self) -> list[tuple[str, StatementBody]]:
        return [
            (sid, body)
            for sid, state in self.statements.items()
            if (body := state.effective) is not None
        ]

    def history(self, actor_id: str, topic_id: str, include_descendants: bool) -> list[Point]:
        scope = descendants(self.parents, actor_id) if include_descendants else {actor_id}
        return timeline(
            (sid, body)
            for sid, body in self.visible()
            if body.topic_id == topic_id and body.actor_id in scope
        )

    def current_stances(
        self, topic_id: str, actor_ids: Iterable[str], moment: datetime | None
    ) -> dict[str, Point]:
        """Each actor's own last point on the topic said at or before ``moment``."""
        found = {}
        for actor_id in actor_ids:
            last = current(self.history(actor_id, topic_id, False), moment)
            if last is not None:
                found[actor_id] = last
        return found

    def series(self) -> dict[SeriesKey, list[Point]]:
        """Every non-empty series: own and rolled-up, for every actor and topic."""
        parents = self.parents
        members: dict[SeriesKey, list[tuple[str, StatementBody]]] = {}
        for sid, body in self.visible():
            for actor, rollup in series_of(lineage(parents, body.actor_id)):
                members.setdefault((actor, body.topic_id, rollup), []).append((sid, body))
        return {key: timeline(members[key]) for key in sorted(members)}


def project(facts: Iterable[Fact]) -> Projection:
    projection = Projection()
    for fact in facts:
        projection.apply(fact)
    return projection

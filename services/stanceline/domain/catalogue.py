"""Actors and topics: registrations, the organisation hierarchy, roll-up scopes.

A registration replaces an earlier one only if its (``time``, event id) is
later, so re-registrations commute. An id named before it is registered
exists with its id as its name and no kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stanceline.domain.facts import ActorRegistered, TopicRegistered, Version, version_of


@dataclass(frozen=True, slots=True)
class Actor:
    actor_id: str
    name: str
    kind: str | None = None
    parent_id: str | None = None
    aliases: tuple[str, ...] = ()
    registered_by: Version | None = None


@dataclass(frozen=True, slots=True)
class Topic:
    topic_id: str
    title: str
    kind: str | None = None
    description: str | None = None
    registered_by: Version | None = None


def unregistered_actor(actor_id: str) -> Actor:
    return Actor(actor_id=actor_id, name=actor_id)


def unregistered_topic(topic_id: str) -> Topic:
    return Topic(topic_id=topic_id, title=topic_id)


def wins(current: Version | None, candidate: Version) -> bool:
    return current is None or candidate > current


def registered_actor(fact: ActorRegistered) -> Actor:
    return Actor(
        fact.actor_id, fact.name, fact.kind, fact.parent_id, fact.aliases, version_of(fact)
    )


def registered_topic(fact: TopicRegistered) -> Topic:
    return Topic(fact.topic_id, fact.title, fact.kind, fact.description, version_of(fact))


def lineage(parents: Mapping[str, str | None], actor_id: str) -> list[str]:
    """The actor, then its parent, up to the root: the series it rolls up into.

    Stops at the first repeat, so a corrupt map can never loop forever.
    """
    chain = [actor_id]
    parent = parents.get(actor_id)
    while parent is not None and parent not in chain:
        chain.append(parent)
        parent = parents.get(parent)
    return chain


def series_of(chain: Sequence[str]) -> list[tuple[str, bool]]:
    """Every series a statement stands on, as (actor, rollup), given its actor's ``lineage``:
    the actor's own series, and the rolled-up series of the actor and of each ancestor."""
    return [(chain[0], False), *((actor, True) for actor in chain)]


def makes_cycle(parents: Mapping[str, str | None], actor_id: str, parent_id: str | None) -> bool:
    """Would hanging ``actor_id`` under ``parent_id`` make it its own ancestor?"""
    if parent_id is None:
        return False
    return actor_id in lineage(parents, parent_id) or parent_id == actor_id


def descendants(parents: Mapping[str, str | None], actor_id: str) -> set[str]:
    """The actor and everything below it."""
    return {a for a in parents if actor_id in lineage(parents, a)} | {actor_id}

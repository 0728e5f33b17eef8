"""Contract events → domain facts: the one place wire shapes meet the domain."""

from __future__ import annotations

import hashlib
from typing import Any

from stanceline.contract import (
    ActorRegistered,
    Event,
    StatementCorrected,
    StatementData,
    StatementRecorded,
    StatementRetracted,
    TopicRegistered,
    canonical_text,
)
from stanceline.domain import facts
from stanceline.domain.stance import Stance


def body_of(data: StatementData) -> facts.StatementBody:
    return facts.StatementBody(
        actor_id=data.actor_id,
        topic_id=data.topic_id,
        said_at=data.said_at,
        stance=Stance(data.stance),
        score=data.effective_score,
        confidence=data.effective_confidence,
        speaker_name=data.speaker.name if data.speaker else None,
        speaker_role=data.speaker.role if data.speaker else None,
        quote=data.quote,
        source_url=data.source_url,
        published_at=data.published_at,
        speech_act=data.speech_act,
        certainty=data.certainty,
    )


def fact_of(event: Event) -> facts.Fact:
    # Exact type checks: pydantic models' metaclass is an ABC, and isinstance (or a class
    # pattern) through ABCMeta costs more than the rest of this function, once per event.
    if type(event) is StatementRecorded:
        return facts.StatementRecorded(
            event.id, event.time, event.data.statement_id, body_of(event.data)
        )
    if type(event) is StatementCorrected:
        return facts.StatementCorrected(
            event.id, event.time, event.data.statement_id, body_of(event.data)
        )
    if type(event) is StatementRetracted:
        return facts.StatementRetracted(
            event.id, event.time, event.data.statement_id, event.data.reason
        )
    if type(event) is ActorRegistered:
        actor = event.data
        return facts.ActorRegistered(
            event.id,
            event.time,
            actor.actor_id,
            actor.name,
            actor.kind,
            actor.parent_id,
            tuple(actor.aliases),
        )
    if type(event) is TopicRegistered:
        topic = event.data
        return facts.TopicRegistered(
            event.id, event.time, topic.topic_id, topic.title, topic.kind, topic.description
        )
    raise TypeError(f"not a v1 event: {type(event).__name__}")


def digest(document: Any) -> str:
    """A stable fingerprint of a JSON value, to tell a redelivery from a conflicting reuse.

    The fingerprint is of ``canonical_text``: digests already stored must keep matching.
    """
    return hashlib.sha256(canonical_text(document)).hexdigest()

"""Contract events → domain facts: the one place wire shapes meet the domain."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from stanceline.contract import (
    ActorRegistered,
    Event,
    StatementCorrected,
    StatementData,
    StatementRecorded,
    StatementRetracted,
    TopicRegistered,
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
    match event:
        case StatementRecorded():
            return facts.StatementRecorded(
                event.id, event.time, event.data.statement_id, body_of(event.data)
            )
        case StatementCorrected():
            return facts.StatementCorrected(
                event.id, event.time, event.data.statement_id, body_of(event.data)
            )
        case StatementRetracted():
            return facts.StatementRetracted(
                event.id, event.time, event.data.statement_id, event.data.reason
            )
        case ActorRegistered(data=actor):
            return facts.ActorRegistered(
                event.id,
                event.time,
                actor.actor_id,
                actor.name,
                actor.kind,
                actor.parent_id,
                tuple(actor.aliases),
            )
        case TopicRegistered(data=topic):
            return facts.TopicRegistered(
                event.id, event.time, topic.topic_id, topic.title, topic.kind, topic.description
            )


def digest(document: Any) -> str:
    """A stable fingerprint of a JSON value, to tell a redelivery from a conflicting reuse."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()

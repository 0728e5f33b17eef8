"""What the domain knows of each v1 event, free of wire details.

The contract layer translates validated events into these facts; the folds
in this package only ever see facts. ``Version`` orders competing facts
about the same thing: of two corrections or registrations, the later
(``time``, event id) wins, whatever order they arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stanceline.domain.stance import Stance

Version = tuple[datetime, str]


@dataclass(frozen=True, slots=True)
class StatementBody:
    actor_id: str
    topic_id: str
    said_at: datetime
    stance: Stance
    score: float
    confidence: float
    speaker_name: str | None = None
    speaker_role: str | None = None
    quote: str | None = None
    source_url: str | None = None
    published_at: datetime | None = None
    speech_act: str | None = None
    certainty: str | None = None


@dataclass(frozen=True, slots=True)
class StatementRecorded:
    event_id: str
    time: datetime
    statement_id: str
    body: StatementBody


@dataclass(frozen=True, slots=True)
class StatementCorrected:
    event_id: str
    time: datetime
    statement_id: str
    body: StatementBody


@dataclass(frozen=True, slots=True)
class StatementRetracted:
    event_id: str
    time: datetime
    statement_id: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ActorRegistered:
    event_id: str
    time: datetime
    actor_id: str
    name: str
    kind: str
    parent_id: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicRegistered:
    event_id: str
    time: datetime
    topic_id: str
    title: str
    kind: str
    description: str | None = None


StatementFact = StatementRecorded | StatementCorrected | StatementRetracted
Fact = StatementFact | ActorRegistered | TopicRegistered


def version_of(fact: Fact) -> Version:
    return (fact.time, fact.event_id)

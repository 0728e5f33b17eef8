"""Response schemas: the HTTP shape, separate from tables and from the wire contract."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

StanceLabel = Literal["support", "oppose", "neutral"]
ChangeKind = Literal["none", "shift", "flip"]


class Actor(BaseModel):
    actor_id: str
    name: str
    kind: str | None = Field(description="null until the actor is registered")
    parent_id: str | None
    aliases: list[str]
    registered: bool


class ActorPage(BaseModel):
    actors: list[Actor]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class Topic(BaseModel):
    topic_id: str
    title: str
    kind: str | None
    description: str | None
    registered: bool


class TopicPage(BaseModel):
    topics: list[Topic]
    next_cursor: str | None


class Speaker(BaseModel):
    name: str
    role: str | None = None


class HistoryPoint(BaseModel):
    statement_id: str
    actor_id: str
    topic_id: str
    said_at: datetime
    stance: StanceLabel
    score: float
    confidence: float
    speaker: Speaker | None
    quote: str | None
    source_url: str | None
    published_at: datetime | None
    speech_act: str | None
    certainty: str | None
    change: ChangeKind = Field(
        description="Against the previous point of this series: a flip crosses sides "
        "(support ↔ oppose), a shift is any other change of label."
    )
    previous_statement_id: str | None


class Current(BaseModel):
    statement_id: str
    actor_id: str
    said_at: datetime
    stance: StanceLabel
    score: float
    contested: bool = Field(
        description="The actor's own and its descendants' current stances take both sides."
    )
    supporting: list[str]
    opposing: list[str]


class History(BaseModel):
    actor_id: str
    topic_id: str
    include_descendants: bool
    as_of: datetime | None
    points: list[HistoryPoint]
    current: Current | None


class CurrentStance(BaseModel):
    actor_id: str
    stance: StanceLabel
    score: float
    said_at: datetime
    statement_id: str


class TopicStances(BaseModel):
    topic_id: str
    as_of: datetime | None
    stances: list[CurrentStance]

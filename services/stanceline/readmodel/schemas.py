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
    previous_statement_id: str | None = Field(
        description="The point before this one in the series: with this one, it explains "
        "the change."
    )


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
    known_at: datetime | None
    points: list[HistoryPoint]
    current: Current | None = Field(description="The last point of the whole series.")
    next_cursor: str | None


class CurrentStance(BaseModel):
    actor_id: str
    topic_id: str
    stance: StanceLabel
    score: float
    said_at: datetime
    statement_id: str


class TopicStances(BaseModel):
    topic_id: str
    as_of: datetime | None
    known_at: datetime | None
    stances: list[CurrentStance]
    next_cursor: str | None


class ActorTopicStance(CurrentStance):
    contested: bool = Field(description="Only with include_descendants: both sides present.")
    supporting: list[str]
    opposing: list[str]


class ActorStances(BaseModel):
    actor_id: str
    include_descendants: bool
    as_of: datetime | None
    known_at: datetime | None
    stances: list[ActorTopicStance]
    next_cursor: str | None


class Matrix(BaseModel):
    actors: list[str]
    topics: list[str]
    include_descendants: bool
    as_of: datetime | None
    known_at: datetime | None
    cells: list[CurrentStance] = Field(description="One per actor and topic with a stance.")


class Bucket(BaseModel):
    actor_id: str
    start: datetime
    mean_score: float | None = Field(description="Confidence-weighted mean score.")
    count: int
    last_stance: StanceLabel
    last_statement_id: str


class Timeline(BaseModel):
    topic_id: str
    bucket: Literal["day", "week", "month"]
    include_descendants: bool
    as_of: datetime | None
    known_at: datetime | None
    buckets: list[Bucket]


class ChangeEntry(BaseModel):
    status: Literal["added", "withdrawn"] = Field(
        description="added: this change point now exists; withdrawn: it no longer does "
        "(a later statement, correction or retraction rewrote the series)."
    )
    actor_id: str
    topic_id: str
    include_descendants: bool
    said_at: datetime
    statement_id: str
    change: Literal["shift", "flip"]
    stance: StanceLabel
    previous_statement_id: str | None
    previous_stance: StanceLabel | None
    recorded_at: datetime


class Changes(BaseModel):
    changes: list[ChangeEntry]
    next_cursor: str = Field(description="Poll again with this; it never skips a change.")


class StatementEvent(BaseModel):
    position: int
    event_id: str
    type: str
    source: str
    time: datetime
    recorded_at: datetime
    data: dict[str, object]


class Statement(BaseModel):
    statement_id: str
    recorded: bool = Field(description="False while only a correction or retraction is known.")
    retracted: bool
    retraction_reason: str | None
    corrected: bool
    reads_now: HistoryPoint | None = Field(
        description="The statement as it reads now (change fields refer to its own series)."
    )
    known_at: datetime | None
    events: list[StatementEvent]

"""The v1 events: CloudEvents 1.0 envelopes in structured JSON form.

Upstream services in any language publish these, so this module is the
contract in Python form; `contracts/schemas/` is the same contract for
everybody else. Change neither without adding a v2 beside it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final, Literal

from pydantic import Field, TypeAdapter

from stanceline.contract.data import (
    ActorData,
    RetractionData,
    StatementData,
    TopicData,
    WireModel,
)
from stanceline.contract.fields import Timestamp

STATEMENT_RECORDED: Final = "stanceline.statement.recorded.v1"
STATEMENT_CORRECTED: Final = "stanceline.statement.corrected.v1"
STATEMENT_RETRACTED: Final = "stanceline.statement.retracted.v1"
ACTOR_REGISTERED: Final = "stanceline.actor.registered.v1"
TOPIC_REGISTERED: Final = "stanceline.topic.registered.v1"

EVENT_TYPES: Final[tuple[str, ...]] = (
    STATEMENT_RECORDED,
    STATEMENT_CORRECTED,
    STATEMENT_RETRACTED,
    ACTOR_REGISTERED,
    TOPIC_REGISTERED,
)
SPEC_VERSION: Final = "1.0"
MAX_ENTRY_BYTES: Final = 64 * 1024
FUTURE_TOLERANCE: Final = timedelta(hours=24)
"""How far past the moment it is recorded a statement's `said_at` may lie (clock skew)."""


class _Envelope(WireModel):
    """The CloudEvents attributes every v1 event carries.

    Unknown extension attributes are kept (`extra="allow"` on WireModel).
    `time` is required, unlike in CloudEvents: it orders corrections and
    registrations.
    """

    specversion: Literal["1.0"]
    id: Annotated[str, Field(min_length=1, max_length=128)]
    source: Annotated[str, Field(min_length=1)]
    time: Timestamp
    datacontenttype: Literal["application/json"] | None = None


class StatementRecorded(_Envelope):
    type: Literal["stanceline.statement.recorded.v1"]
    data: StatementData


class StatementCorrected(_Envelope):
    """The whole statement as it should read; the latest (`time`, `id`) wins."""

    type: Literal["stanceline.statement.corrected.v1"]
    data: StatementData


class StatementRetracted(_Envelope):
    type: Literal["stanceline.statement.retracted.v1"]
    data: RetractionData


class ActorRegistered(_Envelope):
    type: Literal["stanceline.actor.registered.v1"]
    data: ActorData


class TopicRegistered(_Envelope):
    type: Literal["stanceline.topic.registered.v1"]
    data: TopicData


StatementEvent = StatementRecorded | StatementCorrected

Event = Annotated[
    StatementRecorded | StatementCorrected | StatementRetracted | ActorRegistered | TopicRegistered,
    Field(discriminator="type"),
]
"""Any v1 event; pydantic picks the class by `type` in one pass."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

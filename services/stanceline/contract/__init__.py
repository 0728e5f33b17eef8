"""The v1 wire contract: event models, parsing, and the stored form.

Everything else in stanceline imports the contract from here, never from the
modules inside, so they can be rearranged freely.
"""

from stanceline.contract.data import (
    ActorData,
    RetractionData,
    Speaker,
    StatementData,
    TopicData,
)
from stanceline.contract.document import canonical_json, canonical_text, event_document
from stanceline.contract.events import (
    ACTOR_REGISTERED,
    EVENT_ADAPTER,
    EVENT_TYPES,
    FUTURE_TOLERANCE,
    MAX_ENTRY_BYTES,
    SPEC_VERSION,
    STATEMENT_CORRECTED,
    STATEMENT_RECORDED,
    STATEMENT_RETRACTED,
    TOPIC_REGISTERED,
    ActorRegistered,
    Event,
    StatementCorrected,
    StatementEvent,
    StatementRecorded,
    StatementRetracted,
    TopicRegistered,
)
from stanceline.contract.fields import Identifier, Timestamp
from stanceline.contract.parse import Rejection, parse_event

__all__ = [
    "ACTOR_REGISTERED",
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "FUTURE_TOLERANCE",
    "MAX_ENTRY_BYTES",
    "SPEC_VERSION",
    "STATEMENT_CORRECTED",
    "STATEMENT_RECORDED",
    "STATEMENT_RETRACTED",
    "TOPIC_REGISTERED",
    "ActorData",
    "ActorRegistered",
    "Event",
    "Identifier",
    "Rejection",
    "RetractionData",
    "Speaker",
    "StatementCorrected",
    "StatementData",
    "StatementEvent",
    "StatementRecorded",
    "StatementRetracted",
    "Timestamp",
    "TopicData",
    "TopicRegistered",
    "canonical_json",
    "canonical_text",
    "event_document",
    "parse_event",
]

"""What the write path takes in and gives back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stanceline.contract import Event, event_document
from stanceline.store.translate import digest


@dataclass(frozen=True, slots=True)
class Accepted:
    """An entry the contract accepted, with what it came as.

    The stored document and its digest are computed once here: the write path
    needs them to dedupe, to compare re-recordings and to append.
    """

    event: Event
    raw: bytes
    stream_entry_id: str | None = None
    document: dict[str, Any] = field(init=False, repr=False, compare=False)
    digest: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        document = event_document(self.event)
        object.__setattr__(self, "document", document)
        object.__setattr__(self, "digest", digest(document))


@dataclass(frozen=True, slots=True)
class Rejected:
    """An entry bound for ``dead_letters``: its raw bytes and why."""

    raw: bytes
    reason: str
    field: str | None = None
    stream_entry_id: str | None = None
    event_id: str | None = None
    delivery_count: int = 1


@dataclass(slots=True)
class BatchReport:
    appended: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    dead_letter_fields: Counter[str | None] = field(default_factory=Counter)
    """Dead letters by the field their rejection names (None: the entry as a whole)."""

    def __iadd__(self, other: BatchReport) -> BatchReport:
        self.appended += other.appended
        self.duplicates += other.duplicates
        self.dead_lettered += other.dead_lettered
        self.dead_letter_fields.update(other.dead_letter_fields)
        return self

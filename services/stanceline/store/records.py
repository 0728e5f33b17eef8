"""What the write path takes in and gives back."""

from __future__ import annotations

from dataclasses import dataclass

from stanceline.contract import Event


@dataclass(frozen=True, slots=True)
class Accepted:
    """An entry the contract accepted, with what it came as."""

    event: Event
    raw: bytes
    stream_entry_id: str | None = None


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

    def __iadd__(self, other: BatchReport) -> BatchReport:
        self.appended += other.appended
        self.duplicates += other.duplicates
        self.dead_lettered += other.dead_lettered
        return self

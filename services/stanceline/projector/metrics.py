"""Prometheus metrics of the projector.

An entry may become an event, a duplicate or a dead letter. These count what an
operator asks about: entries consumed, events appended, duplicates, dead letters
by reason, deliveries reclaimed, how long an entry took from its ``XADD`` to its
commit, and how far the group is behind. They live in the process's default
registry: ``stanceline up`` serves them on the API's ``/metrics``, a standalone
projector on its own port (``projector.probes``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from stanceline.contract import (
    ActorRegistered,
    StatementRecorded,
    StatementRetracted,
    TopicRegistered,
)

ENTRIES = Counter(
    "stanceline_projector_entries_total",
    "Stream entries handled, by outcome.",
    ["outcome"],
)
CONSUMED = Counter(
    "stanceline_stream_entries_consumed_total",
    "Stream entries this consumer took from the group: read new, or reclaimed from another.",
    ["source"],
)
APPENDED = Counter("stanceline_events_appended_total", "Events appended to the event store.")
DUPLICATES = Counter(
    "stanceline_events_duplicate_total",
    "Entries whose event was already stored with the same body (redeliveries, republishing).",
)
DEAD_LETTERS = Counter(
    "stanceline_dead_letters_total",
    "Entries dead-lettered, by reason: the contract field the rejection names (`entry` when"
    " the entry was not an event at all; `delivery` past the delivery cap; `store` when the"
    " database refused it).",
    ["reason"],
)
RECLAIMED = Counter(
    "stanceline_deliveries_reclaimed_total",
    "Entries claimed back from a consumer that held them past the reclaim threshold.",
)
LATENCY = Histogram(
    "stanceline_projection_latency_seconds",
    "From the stream entry's id time (its XADD) to the commit that stored it.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
BATCH_SECONDS = Histogram(
    "stanceline_projector_batch_seconds",
    "Time from reading a batch to its commit.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STORE_UP = Gauge(
    "stanceline_projector_store_up",
    "1 while the projector can write to Postgres, 0 while it is retrying.",
)
GROUP_LAG = Gauge(
    "stanceline_consumer_group_lag",
    "Entries in the stream not yet delivered to the group (Redis 7's XINFO GROUPS lag).",
)
GROUP_PENDING = Gauge(
    "stanceline_consumer_group_pending",
    "Entries delivered to the group and not yet acknowledged.",
)
SHARD_LAG = Gauge(
    "stanceline_consumer_group_shard_lag",
    "The group's lag on one stream key (shard); stanceline_consumer_group_lag is their sum.",
    ["stream"],
)
SHARD_PENDING = Gauge(
    "stanceline_consumer_group_shard_pending",
    "The group's pending entries on one stream key (shard); the unlabelled gauge is the sum.",
    ["stream"],
)


_KNOWN_REASONS = frozenset(
    {"entry", "event", "delivery", "store", "data"}
    | {
        name
        for model in (StatementRecorded, StatementRetracted, ActorRegistered, TopicRegistered)
        for name in model.model_fields
    }
    | {
        f"data.{name}"
        for model in (StatementRecorded, StatementRetracted, ActorRegistered, TopicRegistered)
        for name in model.model_fields["data"].annotation.model_fields  # type: ignore[union-attr]
    }
)


def reason_label(field: str | None) -> str:
    """A dead letter's reason as a label of bounded cardinality.

    The reason is the dotted path the rejection names, which for an unknown
    field is whatever the publisher wrote: paths the contract knows are kept,
    anything else is cut to its first known parent (``data``), or ``other``.
    """
    if field is None:
        return "entry"
    parts = field.split(".")
    for depth in (2, 1):
        candidate = ".".join(parts[:depth])
        if candidate in _KNOWN_REASONS:
            return candidate
    return "other"


def observe_commit(entry_ids: Iterable[str], now: float | None = None) -> None:
    """The time from each entry's XADD (the milliseconds of its id) to now."""
    moment = time.time() if now is None else now
    for entry_id in entry_ids:
        millis, _, _ = entry_id.partition("-")
        if millis.isdigit():
            LATENCY.observe(max(0.0, moment - int(millis) / 1000))

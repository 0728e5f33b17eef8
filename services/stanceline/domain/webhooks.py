"""Flip alerts as Standard Webhooks: which messages a subscription gets, what they say,
what they are called, and when a failed one is tried again. No I/O.

Rules here are the one definition the outbox's SQL, the dispatcher and the admin API
use: ``receives`` is stored on each subscription, the message id and the body are built
only by these functions, and the retry schedule is applied only by ``next_delay``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

from stanceline.domain.stance import Change


class Kind(StrEnum):
    """What a subscriber asks for: flips, other changes of stance, and withdrawals."""

    FLIP = "flip"
    CHANGE = "change"
    WITHDRAWN = "withdrawn"


DEFAULT_KINDS = (Kind.FLIP,)
DEFAULT_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)
"""Standard Webhooks' schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
20 h, 24 h (each the wait after the previous attempt failed)."""
JITTER = 0.2
"""A scheduled wait is stretched by up to this fraction, never shortened."""
MAX_RETRY_AFTER = 86400.0
"""A receiver's ``Retry-After`` is honoured up to a day."""

_POINT_KINDS = {Change.FLIP: Kind.FLIP, Change.SHIFT: Kind.CHANGE}
_TYPES = {Change.FLIP: "stance.flipped", Change.SHIFT: "stance.changed"}
WITHDRAWN_TYPE = "stance.withdrawn"


def receives(kinds: Iterable[Kind]) -> list[str]:
    """The feed entries (``status:change``) a subscription with these kinds is sent.

    ``flip`` selects added flips, ``change`` added shifts; with neither, both. A
    withdrawal is sent only with ``withdrawn``, and only for a point of a kind the
    subscription is sent: a receiver hears of a withdrawal only of what it could have
    heard of.
    """
    chosen = set(kinds)
    points = [c for c, k in _POINT_KINDS.items() if k in chosen] or list(_POINT_KINDS)
    selected = [f"added:{c.value}" for c in points]
    if Kind.WITHDRAWN in chosen:
        selected += [f"withdrawn:{c.value}" for c in points]
    return sorted(selected)


def event_type(status: str, change: str) -> str:
    """``stance.flipped``, ``stance.changed`` or ``stance.withdrawn`` for a feed entry."""
    return WITHDRAWN_TYPE if status == "withdrawn" else _TYPES[Change(change)]


def message_id(subscription_id: str, change_id: int) -> str:
    """The ``webhook-id``: derived from the subscription and the feed entry, so every
    retry and every replay of one entry carries it, and a withdrawal (an entry of its
    own) has another."""
    digest = hashlib.sha256(f"{subscription_id}\n{change_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """A change point of the feed as a message describes it."""

    change_id: int
    cursor: str
    status: str
    actor_id: str
    topic_id: str
    rollup: bool
    statement_id: str
    said_at: datetime
    stance: str
    previous_stance: str | None
    previous_statement_id: str | None
    change: str
    recorded_at: datetime


def body(subscription_id: str, sequence: int, entry: FeedEntry) -> bytes:
    """The request body: the same bytes for every retry and replay of one message."""
    document: dict[str, Any] = {
        "type": event_type(entry.status, entry.change),
        "timestamp": _instant(entry.recorded_at),
        "data": {
            "subscription_id": subscription_id,
            "actor_id": entry.actor_id,
            "topic_id": entry.topic_id,
            "include_descendants": entry.rollup,
            "statement_id": entry.statement_id,
            "said_at": _instant(entry.said_at),
            "stance": entry.stance,
            "previous_stance": entry.previous_stance,
            "previous_statement_id": entry.previous_statement_id,
            "change": entry.change,
            "status": entry.status,
            "cursor": entry.cursor,
            "known_at": _instant(entry.recorded_at),
            "sequence": sequence,
        },
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_schedule(text: str) -> tuple[float, ...]:
    """``STANCELINE_WEBHOOK_RETRY_SCHEDULE``: comma-separated seconds, one per attempt."""
    values = tuple(float(part) for part in text.split(",") if part.strip())
    if not values or any(v < 0 for v in values):
        raise ValueError("a retry schedule is one or more non-negative seconds, comma-separated")
    return values


def retry_after(header: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` value (seconds or an HTTP date) as seconds from ``now``."""
    if header is None:
        return None
    text = header.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def next_delay(
    schedule: Sequence[float], attempts_done: int, wait_at_least: float | None, jitter: float
) -> float | None:
    """Seconds until the next attempt after ``attempts_done`` attempts failed, or None when
    the schedule is spent. ``jitter`` in [0, 1) stretches the scheduled wait; a
    ``Retry-After`` (``wait_at_least``) is a floor that jitter never lowers."""
    if attempts_done >= len(schedule):
        return None
    scheduled = schedule[attempts_done] * (1.0 + JITTER * jitter)
    return max(scheduled, wait_at_least or 0.0)


def should_retry(status: int | None) -> bool:
    """Whether an answer is worth another attempt: anything but success and ``410 Gone``."""
    return status is None or not (200 <= status < 300 or status == 410)

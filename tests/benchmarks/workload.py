"""What the benchmark publishes: the fault harness's seeded corpus, and the lag probe's events.

The corpus is ``faults.corpus``'s generator (a three-level hierarchy of actors, topics,
statements whose latent stance random-walks so stances drift and flip, corrections and
retractions, 1% exact duplicates, 1% displaced out of order, 0.5% invalid lines), reused as
it is; only its sizes may be overridden here: the number of actors and topics, the number of
hierarchy moves, and whether the hierarchy is registered before the statements or spread
over the first fifth of the stream (the fault corpus's layout).

``backfill`` reorders a corpus as a historical archive loaded out of order would arrive:
the same lines, the hierarchy and topics first, everything else shuffled (see there).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from faults.corpus import Sizes, _Generator

Hierarchy = Literal["spread", "upfront"]


@dataclass(frozen=True)
class Workload:
    lines: list[bytes]
    """One stream entry each, in publishing order."""
    sizes: Sizes
    seed: int
    hierarchy: Hierarchy
    distinct_valid: int
    """Lines that must end in ``events``: valid and not a repeat of an earlier line."""
    invalid: int
    """Lines that must end in ``dead_letters``."""
    duplicates: int
    invalid_at: frozenset[int] = frozenset()
    """Indexes into ``lines`` of the invalid ones, as the generator built them."""

    def describe(self) -> dict[str, Any]:
        return {
            "lines": len(self.lines),
            "seed": self.seed,
            "hierarchy": self.hierarchy,
            "actors": self.sizes.actors,
            "topics": self.sizes.topics,
            "statements": self.sizes.statements,
            "corrections": self.sizes.corrections,
            "retractions": self.sizes.retractions,
            "moves": self.sizes.moves,
            "duplicates": self.duplicates,
            "displaced": self.sizes.displaced,
            "invalid": self.invalid,
            "distinct_valid": self.distinct_valid,
            "mean_line_bytes": round(sum(map(len, self.lines)) / max(1, len(self.lines)), 1),
        }


def sizes_for(
    total: int, *, actors: int | None = None, topics: int | None = None, moves: int | None = None
) -> Sizes:
    """The fault corpus's shares of ``total`` lines, with the given counts instead."""
    base = Sizes.for_total(total)
    sizes = replace(
        base,
        actors=actors if actors is not None else base.actors,
        topics=topics if topics is not None else base.topics,
        moves=moves if moves is not None else base.moves,
    )
    statements = total - _lines(replace(sizes, statements=0))
    if statements < 20 or sizes.actors < 8 or sizes.topics < 1:
        raise ValueError(
            f"{total} lines cannot hold {sizes.actors} actors and {sizes.topics} topics "
            "(at least 8 actors, 1 topic and 20 statements)"
        )
    return replace(sizes, statements=statements)


class _SizedGenerator(_Generator):
    """``faults.corpus``'s generator with sizes chosen here rather than from the total."""

    def __init__(self, sizes: Sizes, seed: int, hierarchy: Hierarchy) -> None:
        super().__init__(_lines(sizes), seed)
        self.sizes = sizes
        self.scale = float(sizes.statements)
        self.window = max(20.0, self.scale * 0.02)
        self._hierarchy_layout = hierarchy
        self._first_registrations = 0

    def _register_actor(
        self, position: float, actor_id: str, parent: str | None, when: datetime
    ) -> None:
        if self._hierarchy_layout == "upfront" and self._first_registrations < self.sizes.actors:
            # First registrations go before every statement (moves stay where they fall).
            self._first_registrations += 1
            position = -1.0 + self._first_registrations / (self.sizes.actors + 1)
        super()._register_actor(position, actor_id, parent, when)


def _lines(sizes: Sizes) -> int:
    """Lines in a corpus of these sizes (one is the topic re-registration)."""
    return (
        sizes.actors
        + sizes.topics
        + sizes.moves
        + sizes.corrections
        + sizes.retractions
        + sizes.duplicates
        + sizes.invalid
        + 1
        + sizes.statements
    )


def generate(sizes: Sizes, seed: int, hierarchy: Hierarchy) -> Workload:
    items = _SizedGenerator(sizes, seed, hierarchy).items()
    lines = [item.line for item in items]
    valid = {item.line for item in items if item.valid}
    invalid_at = frozenset(i for i, item in enumerate(items) if not item.valid)
    invalid = len(invalid_at)
    return Workload(
        lines=lines,
        sizes=sizes,
        seed=seed,
        hierarchy=hierarchy,
        distinct_valid=len(valid),
        invalid=invalid,
        duplicates=len(lines) - invalid - len(valid),
        invalid_at=invalid_at,
    )


# --- the backfill -----------------------------------------------------------------------------

_REGISTRATIONS = (
    b'"type":"stanceline.actor.registered.v1"',
    b'"type":"stanceline.topic.registered.v1"',
)
_STATEMENT = b'"type":"stanceline.statement.recorded.v1"'


def backfill(workload: Workload) -> Workload:
    """The same lines in a backfill's order: ``said_at`` in random order.

    The first registration of each actor and topic stays in front, in its original order
    (an archive is loaded after its hierarchy). Every other line is shuffled, by a
    generator seeded from the workload's seed: statements, corrections and retractions
    (which may now arrive before their statement), re-registrations (moves, the topic
    rename), duplicates (either copy may come first) and invalid lines. A permutation of
    the lines, so the events and dead letters it must leave are the workload's own.
    """
    head: list[int] = []
    rest: list[int] = []
    registered: set[tuple[str, str]] = set()
    for n, line in enumerate(workload.lines):
        if n not in workload.invalid_at and any(mark in line for mark in _REGISTRATIONS):
            data = json.loads(line)["data"]
            key = ("actor", data["actor_id"]) if "actor_id" in data else ("topic", data["topic_id"])
            if key not in registered:
                registered.add(key)
                head.append(n)
                continue
        rest.append(n)
    random.Random(f"stanceline-backfill:{workload.seed}").shuffle(rest)
    order = head + rest
    return replace(
        workload,
        lines=[workload.lines[n] for n in order],
        invalid_at=frozenset(i for i, n in enumerate(order) if n in workload.invalid_at),
    )


def said_at_order(workload: Workload) -> float:
    """How far ``said_at`` follows the publishing order: Spearman's rank correlation over
    the valid recorded statements (1.0 chronological, about 0 for a random order)."""
    moments: list[float] = []
    for n, line in enumerate(workload.lines):
        if n in workload.invalid_at or _STATEMENT not in line:
            continue
        said_at = json.loads(line)["data"]["said_at"]
        moments.append(datetime.fromisoformat(said_at).timestamp())
    count = len(moments)
    if count < 2:
        return 0.0
    by_time = sorted(range(count), key=moments.__getitem__)
    squares = sum((rank - n) ** 2 for rank, n in enumerate(by_time))
    return 1 - 6 * squares / (count * (count * count - 1))


# --- the lag probe ---------------------------------------------------------------------------

LAG_TOPIC = "bench-lag-topic"
LAG_SAID_FROM = datetime(2025, 1, 1, tzinfo=UTC)


def lag_statement_id(n: int) -> str:
    return f"bench-lag.s{n:08d}"


def lag_event(n: int, actors: int) -> bytes:
    """Statement ``n`` of the lag probe: actor ``n % actors`` on the lag topic.

    Each actor's stance alternates support/oppose and ``said_at`` grows with ``n``, so
    every statement after an actor's first is a flip at the end of its own series: exactly
    one ``added`` entry in the changes feed (own series, not rolled up) says it is visible.
    """
    stance = "support" if (n // actors) % 2 == 0 else "oppose"
    document = {
        "specversion": "1.0",
        "id": f"bench-lag-{n:08d}",
        "source": "urn:stanceline:bench",
        "type": "stanceline.statement.recorded.v1",
        "time": _z(LAG_SAID_FROM + timedelta(seconds=n, minutes=5)),
        "datacontenttype": "application/json",
        "data": {
            "statement_id": lag_statement_id(n),
            "actor_id": f"bench-lag-actor-{n % actors:04d}",
            "topic_id": LAG_TOPIC,
            "stance": stance,
            "said_at": _z(LAG_SAID_FROM + timedelta(seconds=n)),
            "confidence": 0.9,
            "speaker": {"name": f"Lag speaker {n % actors}", "role": "spokesperson"},
            "quote": f"We {stance} it (lag probe statement {n}).",
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

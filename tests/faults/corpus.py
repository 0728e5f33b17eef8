"""A seeded corpus of v1 events for fault trials, laid out as an upstream would publish it.

The fault harness needs a stream that exercises every rule the projection must keep under
redelivery: a hierarchy that moves, stances that drift and flip, corrections and
retractions (some arriving before their statement), exact duplicates, entries out of
order, and lines that must be dead-lettered. The same seed and size give the same bytes,
so a failing trial can be replayed exactly. To look at one, or publish it by hand:

    .venv/bin/python tests/faults/corpus.py --events 1000 --seed 7 > corpus.jsonl
    STANCELINE_REDIS_URL=... .venv/bin/stanceline publish corpus.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from stanceline.contract import Event, Rejection, parse_event

START = datetime(2019, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=6 * 365)
"""Statements are said in 2019–2024, always in the past: a ``said_at`` more than 24 hours
ahead of the moment of recording would be dead-lettered, and the oracle would not know."""
PLUS_TWO = timezone(timedelta(hours=2))
STANCES = ("support", "oppose", "neutral")
SPEECH_ACTS = ("assert", "deny", "investigate", "question", "decline_comment", "act")
CERTAINTIES = ("certain", "probable", "possible", "uncommitted")
ACTOR_KINDS = ("state", "organisation", "person")


@dataclass(frozen=True)
class Corpus:
    lines: list[bytes]
    """One stream entry each, in publishing order."""
    events: list[Event]
    """Every distinct valid event, parsed, in the order first published: the oracle's input."""
    invalid_at: frozenset[int]
    """Indexes into ``lines`` of the entries that must end in ``dead_letters``."""
    duplicates: int
    """Lines that repeat an earlier line byte for byte: each must be a no-op."""

    @property
    def invalid(self) -> int:
        return len(self.invalid_at)


@dataclass(frozen=True)
class Sizes:
    """How a total number of lines is shared out; the rates are the issue's."""

    actors: int
    topics: int
    moves: int
    corrections: int
    retractions: int
    duplicates: int
    invalid: int
    displaced: int
    statements: int

    @classmethod
    def for_total(cls, total: int) -> Sizes:
        actors = min(max(total // 250, 8), 400)
        topics = min(max(total // 1000, 3), 60)
        parts = {
            "actors": actors,
            "topics": topics,
            "moves": max(1, actors // 10),
            "corrections": max(1, round(total * 0.02)),
            "retractions": max(1, round(total * 0.01)),
            "duplicates": max(1, round(total * 0.01)),
            "invalid": max(1, round(total * 0.005)),
        }
        # One line is the topic re-registration.
        statements = total - sum(parts.values()) - 1
        if statements < 20:
            raise ValueError(f"{total} lines is too few for a corpus; ask for 100 or more")
        return cls(**parts, displaced=max(1, round(total * 0.01)), statements=statements)


@dataclass
class _Item:
    position: float
    line: bytes
    valid: bool = True


@dataclass(frozen=True)
class _Recorded:
    statement_id: str
    data: dict[str, Any]
    time: datetime
    position: float


def generate(total: int, seed: int, *, now: datetime | None = None) -> Corpus:
    """``total`` lines (duplicates and invalid lines included) from ``seed``.

    ``now`` is the recording moment used to parse the valid events for the oracle, as the
    projector will; the corpus itself does not depend on it.
    """
    items = _Generator(total, seed).items()
    lines = [item.line for item in items]
    invalid_at = frozenset(i for i, item in enumerate(items) if not item.valid)
    moment = now or datetime.now(UTC)
    events: list[Event] = []
    seen: set[bytes] = set()
    for index, line in enumerate(lines):
        parsed = parse_event(line, now=moment)
        if index in invalid_at:
            if not isinstance(parsed, Rejection):
                raise AssertionError(f"corpus line {index} should be invalid: {line[:120]!r}")
        elif isinstance(parsed, Rejection):
            raise AssertionError(
                f"corpus line {index} is invalid ({parsed.reason}): {line[:120]!r}"
            )
        elif line not in seen:
            seen.add(line)
            events.append(parsed)
    duplicates = len(lines) - len(invalid_at) - len(events)
    return Corpus(lines, events, invalid_at, duplicates)


class _Generator:
    """Builds the lines with a position each, then publishes them in position order.

    Positions run over the statements (statement k sits at k); everything else is placed
    relative to them, which is how "before its statement" and "out of order" are made.
    """

    def __init__(self, total: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sizes = Sizes.for_total(total)
        self.prefix = f"f{seed}"
        self.serial = 0
        self.scale = float(self.sizes.statements)
        self.window = max(20.0, self.scale * 0.02)
        self._items: list[_Item] = []
        self.actors: list[list[str]] = [[], [], []]
        self.parents: dict[str, str | None] = {}
        self.topics: list[str] = []
        self.recorded: list[_Recorded] = []

    def items(self) -> list[_Item]:
        self._hierarchy()
        self._topics()
        self._statements()
        self._corrections()
        self._retractions()
        self._displace()
        self._duplicates()
        self._invalid()
        return sorted(self._items, key=lambda item: item.position)

    def _id(self, kind: str) -> str:
        self.serial += 1
        return f"{self.prefix}-{kind}-{self.serial:06d}"

    def _add(self, position: float, type_: str, time: datetime, data: dict[str, Any]) -> None:
        document = {
            "specversion": "1.0",
            "id": self._id(type_.split(".")[1][:4]),
            "source": "urn:stanceline:faults",
            "type": f"stanceline.{type_}.v1",
            "time": _rfc3339(time, self.rng),
            "datacontenttype": "application/json",
            "data": data,
        }
        self._items.append(_Item(position, _dumps(document)))

    def _hierarchy(self) -> None:
        """States, their organisations, their people: three levels, parents one level up.

        A parent is always on a higher level, in the first registration and in every move,
        so no set of registrations in any order can make a cycle (that would be dead-lettered).
        """
        count = self.sizes.actors
        roots = max(2, count // 8)
        middle = max(2, (count - roots) // 2)
        for i in range(count):
            level = 0 if i < roots else 1 if i < roots + middle else 2
            actor_id = f"actor-{i:03d}"
            parent = self.rng.choice(self.actors[level - 1]) if level else None
            self.actors[level].append(actor_id)
            self.parents[actor_id] = parent
            when = START - timedelta(days=60) + timedelta(hours=i)
            # Up to a fifth into the stream: many statements name an actor before it exists.
            self._register_actor(self.rng.uniform(-1, 0.2 * self.scale), actor_id, parent, when)
        movable = self.actors[1] + self.actors[2]
        for _ in range(self.sizes.moves):
            actor_id = self.rng.choice(movable)
            level = 1 if actor_id in self.actors[1] else 2
            choices = [a for a in self.actors[level - 1] if a != self.parents[actor_id]]
            parent = self.rng.choice(choices or self.actors[level - 1])
            # A quarter of the moves carry an older time than the first registration: they
            # must lose whatever order they arrive in.
            days = (
                -self.rng.randint(61, 400)
                if self.rng.random() < 0.25
                else self.rng.randint(1, 2000)
            )
            when = START + timedelta(days=days)
            self._register_actor(self.rng.uniform(0, self.scale), actor_id, parent, when)

    def _register_actor(
        self, position: float, actor_id: str, parent: str | None, when: datetime
    ) -> None:
        level = next(n for n, ids in enumerate(self.actors) if actor_id in ids)
        data: dict[str, Any] = {
            "actor_id": actor_id,
            "name": f"Actor {actor_id[6:]} ({when.year})",
            "kind": ACTOR_KINDS[level],
        }
        if parent is not None:
            data["parent_id"] = parent
        if self.rng.random() < 0.3:
            data["aliases"] = [f"A{actor_id[6:]}", f"alias-{self.rng.randrange(1000)}"]
        self._add(position, "actor.registered", when, data)

    def _topics(self) -> None:
        for k in range(self.sizes.topics):
            topic_id = f"topic-{k:02d}"
            self.topics.append(topic_id)
            data: dict[str, Any] = {
                "topic_id": topic_id,
                "title": f"Proposition {k}",
                "kind": self.rng.choice(("policy", "claim")),
            }
            when = START - timedelta(days=90) + timedelta(hours=k)
            self._add(self.rng.uniform(-1, 0.1 * self.scale), "topic.registered", when, data)
        retitled = {"topic_id": self.topics[0], "title": "Proposition 0, reworded", "kind": "other"}
        retitled["description"] = "re-registered: the latest (time, id) wins"
        self._add(self.rng.uniform(0, self.scale), "topic.registered", START, retitled)

    def _statements(self) -> None:
        """Each (actor, topic) has a latent position that random-walks: stances drift and flip."""
        count = self.sizes.statements
        latent: dict[tuple[str, str], float] = {}
        everyone = [a for level in self.actors for a in level]
        for k in range(count):
            actor_id, topic_id = self.rng.choice(everyone), self.rng.choice(self.topics)
            x = latent.get((actor_id, topic_id), self.rng.uniform(-1, 1))
            x = max(-1.0, min(1.0, x + self.rng.gauss(0, 0.45)))
            latent[(actor_id, topic_id)] = x
            stance = "support" if x > 0.25 else "oppose" if x < -0.25 else "neutral"
            jitter = timedelta(seconds=self.rng.randint(-30 * 86400, 30 * 86400))
            said_at = _seconds(START + SPAN * (k / count) + jitter)
            statement_id = f"{self.prefix}.s{k:06d}"
            data = self._statement_data(statement_id, actor_id, topic_id, stance, said_at)
            when = _seconds(said_at + timedelta(minutes=self.rng.randint(10, 72 * 60)))
            self._add(float(k), "statement.recorded", when, data)
            self.recorded.append(_Recorded(statement_id, data, when, float(k)))

    def _statement_data(
        self, statement_id: str, actor_id: str, topic_id: str, stance: str, said_at: datetime
    ) -> dict[str, Any]:
        rng = self.rng
        data: dict[str, Any] = {
            "statement_id": statement_id,
            "actor_id": actor_id,
            "topic_id": topic_id,
            "stance": stance,
            "said_at": _rfc3339(said_at, rng),
        }
        if rng.random() < 0.6:
            data["score"] = _score(stance, rng)
        if rng.random() < 0.4:
            data["confidence"] = round(rng.uniform(0.3, 1.0), 2)
        if rng.random() < 0.5:
            speaker: dict[str, str] = {"name": f"Speaker {rng.randrange(80)}"}
            if rng.random() < 0.5:
                speaker["role"] = rng.choice(("minister", "spokesperson", "general", "envoy"))
            data["speaker"] = speaker
        if rng.random() < 0.5:
            data["quote"] = f"On {topic_id} we {stance} it, as of {said_at:%B %Y}."
        if rng.random() < 0.3:
            data["source_url"] = f"https://news.example/{statement_id}"
        if rng.random() < 0.2:
            data["published_at"] = _rfc3339(said_at + timedelta(hours=rng.randint(1, 48)), rng)
        if rng.random() < 0.3:
            data["speech_act"] = rng.choice(SPEECH_ACTS)
            data["certainty"] = rng.choice(CERTAINTIES)
        return data

    def _offset(self) -> float:
        return self.rng.uniform(1, self.window)

    def _corrections(self) -> None:
        """Whole statements as they should read; a tenth arrive before the statement."""
        everyone = [a for level in self.actors for a in level]
        for _ in range(self.sizes.corrections):
            original = self.rng.choice(self.recorded)
            data = dict(original.data)
            roll = self.rng.random()
            if roll < 0.5:
                data["stance"] = self.rng.choice([s for s in STANCES if s != data["stance"]])
                if "score" in data:
                    data["score"] = _score(data["stance"], self.rng)
            elif roll < 0.7:
                shift = timedelta(days=self.rng.randint(-40, 40))
                said_at = datetime.fromisoformat(data["said_at"].replace("Z", "+00:00"))
                data["said_at"] = _rfc3339(said_at + shift, self.rng)
            elif roll < 0.85:
                data["actor_id"] = self.rng.choice(everyone)
            else:
                data["confidence"] = round(self.rng.uniform(0.1, 1.0), 2)
            when = _seconds(original.time + timedelta(hours=self.rng.randint(1, 120 * 24)))
            sign = -1 if self.rng.random() < 0.1 else 1
            position = original.position + sign * self._offset()
            self._add(position, "statement.corrected", when, data)

    def _retractions(self) -> None:
        """A third are published before the statement they retract."""
        for original in self.rng.sample(self.recorded, self.sizes.retractions):
            data: dict[str, Any] = {"statement_id": original.statement_id}
            if self.rng.random() < 0.5:
                data["reason"] = "the coder misread the source"
            when = _seconds(original.time + timedelta(hours=self.rng.randint(1, 60 * 24)))
            sign = -1 if self.rng.random() < 0.3 else 1
            self._add(original.position + sign * self._offset(), "statement.retracted", when, data)

    def _displace(self) -> None:
        for item in self.rng.sample(self._items, self.sizes.displaced):
            item.position += self.rng.uniform(-self.window, self.window) * 5

    def _duplicates(self) -> None:
        for item in self.rng.sample(self._items, self.sizes.duplicates):
            position = item.position + self.rng.uniform(1, self.window * 5)
            self._items.append(_Item(position, item.line))

    def _invalid(self) -> None:
        """Lines no projector may drop or store: each must become a dead letter."""
        for n in range(self.sizes.invalid):
            position = self.rng.uniform(0, self.scale)
            kind = n % 4
            if kind == 0:
                line = _dumps(self._bad_score(n))[: self.rng.randint(10, 80)]
            elif kind == 1:
                line = f"not json: statement number {n} went missing".encode()
            elif kind == 2:
                line = _dumps(self._bad_score(n))
            else:
                line = b'{"specversion":"1.0","id":"' + self.prefix.encode() + b'-latin1-\xe9"}'
            self._items.append(_Item(position, line, valid=False))

    def _bad_score(self, n: int) -> dict[str, Any]:
        """Valid JSON, invalid contract: a support whose score says oppose."""
        data = {
            "statement_id": f"{self.prefix}.bad{n:05d}",
            "actor_id": self.actors[0][0],
            "topic_id": self.topics[0],
            "stance": "support",
            "score": -0.5,
            "said_at": "2022-02-02T00:00:00Z",
        }
        return {
            "specversion": "1.0",
            "id": f"{self.prefix}-bad-{n:05d}",
            "source": "urn:stanceline:faults",
            "type": "stanceline.statement.recorded.v1",
            "time": "2022-02-02T01:00:00Z",
            "data": data,
        }


def _score(stance: str, rng: random.Random) -> float:
    magnitude = round(rng.uniform(0.05, 1.0), 3)
    return {"support": magnitude, "oppose": -magnitude, "neutral": 0.0}[stance]


def _seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _rfc3339(moment: datetime, rng: random.Random) -> str:
    """Mostly ``Z``; one in ten with a +02:00 offset, which must mean the same instant."""
    moment = _seconds(moment)
    if rng.random() < 0.1:
        return moment.astimezone(PLUS_TWO).isoformat()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a fault-trial corpus as JSON lines.")
    parser.add_argument("--events", type=int, default=1000, help="lines in all")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    corpus = generate(args.events, args.seed)
    sys.stdout.buffer.write(b"".join(line + b"\n" for line in corpus.lines))
    print(
        f"{len(corpus.lines)} lines: {len(corpus.events)} distinct valid events, "
        f"{corpus.duplicates} duplicates, {corpus.invalid} invalid",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

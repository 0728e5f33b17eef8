"""Hypothesis strategies for domain facts: small worlds that collide on purpose.

Times come from tiny sets so that ``said_at`` ties (broken by statement id)
and version ties (broken by event id) are common, and one ``said_at`` is the
same instant as another written with a different UTC offset. Parents are
always chosen from actors earlier in a fixed order, so no registration, in
any arrival order, can close a cycle: every fact a world holds is valid and
must be accepted.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from functools import cache

from hypothesis import strategies as st

from stanceline.domain.facts import (
    ActorRegistered,
    Fact,
    StatementBody,
    StatementCorrected,
    StatementRecorded,
    StatementRetracted,
    TopicRegistered,
)
from stanceline.domain.stance import Stance, default_score

ACTOR_IDS = ("a0", "a1", "a2", "a3", "a4")
TOPIC_IDS = ("t0", "t1")
STATEMENT_IDS = tuple(f"s{n:02d}" for n in range(30))
ORPHAN_IDS = ("orphan-0", "orphan-1")
"""Statements that are corrected or retracted but never recorded."""

_DAY = datetime(2024, 5, 30, 12, tzinfo=UTC)
SAID_AT = (
    _DAY,
    _DAY.astimezone(timezone(timedelta(hours=2))),
    _DAY + timedelta(days=1),
    _DAY + timedelta(days=40),
)
FACT_TIMES = (_DAY, _DAY + timedelta(hours=1), _DAY + timedelta(days=2))

_PLACEHOLDER = "pending"

# Built once: a strategy built inside a draw is validated again on every example.
_fact_times = st.sampled_from(FACT_TIMES)
_recordings = st.sampled_from((1, 1, 1, 2))
_corrections = st.sampled_from((0, 0, 1, 2, 3))
_retractions = st.sampled_from((0, 0, 0, 0, 1, 2))
_reasons = st.sampled_from((None, "misattributed"))
_kinds = st.sampled_from(("state", "organisation"))
_registrations = st.integers(0, 2)
_orphans = st.lists(st.sampled_from(ORPHAN_IDS), max_size=2, unique=True)


@cache
def _parents(earlier: tuple[str, ...]) -> st.SearchStrategy[str | None]:
    return st.none() | st.sampled_from(earlier) if earlier else st.none()


@cache
def _statement_ids(max_size: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(STATEMENT_IDS), min_size=1, max_size=max_size, unique=True)


@cache
def bodies(actor_ids: tuple[str, ...]) -> st.SearchStrategy[StatementBody]:
    return st.builds(
        _body,
        actor_id=st.sampled_from(actor_ids),
        topic_id=st.sampled_from(TOPIC_IDS),
        said_at=st.sampled_from(SAID_AT),
        stance=st.sampled_from(Stance),
        confidence=st.sampled_from((0.0, 0.5, 1.0)),
        quote=st.sampled_from((None, "as quoted")),
    )


def _body(
    actor_id: str,
    topic_id: str,
    said_at: datetime,
    stance: Stance,
    confidence: float,
    quote: str | None,
) -> StatementBody:
    return StatementBody(
        actor_id=actor_id,
        topic_id=topic_id,
        said_at=said_at,
        stance=stance,
        score=default_score(stance),
        confidence=confidence,
        quote=quote,
    )


@st.composite
def worlds(draw: st.DrawFn, max_statements: int = 25) -> list[Fact]:
    """A valid set of facts, in an arrival order that is itself arbitrary.

    Actors may be registered several times (moving them in the hierarchy),
    or never (named only by a statement or as a parent). Statements may be
    recorded twice with the same body under two event ids, corrected (also
    to another actor or topic) and retracted; some corrections and
    retractions name statements that are never recorded.
    """
    actor_ids = ACTOR_IDS[: draw(st.integers(1, len(ACTOR_IDS)))]
    facts: list[Fact] = []

    for index, actor_id in enumerate(actor_ids):
        for _ in range(draw(_registrations)):
            facts.append(
                ActorRegistered(
                    _PLACEHOLDER,
                    draw(_fact_times),
                    actor_id,
                    name=f"Actor {actor_id} ({len(facts)})",
                    kind=draw(_kinds),
                    parent_id=draw(_parents(actor_ids[:index])),
                )
            )
    for topic_id in TOPIC_IDS:
        for _ in range(draw(_registrations)):
            facts.append(
                TopicRegistered(
                    _PLACEHOLDER,
                    draw(_fact_times),
                    topic_id,
                    title=f"Topic {topic_id} ({len(facts)})",
                    kind="policy",
                )
            )

    statement_ids = draw(_statement_ids(max_statements))
    orphans = draw(_orphans)
    for statement_id in [*statement_ids, *orphans]:
        if statement_id not in orphans:
            body = draw(bodies(actor_ids))
            for _ in range(draw(_recordings)):
                facts.append(StatementRecorded(_PLACEHOLDER, draw(_fact_times), statement_id, body))
        for _ in range(draw(_corrections)):
            facts.append(
                StatementCorrected(
                    _PLACEHOLDER,
                    draw(_fact_times),
                    statement_id,
                    draw(bodies(actor_ids)),
                )
            )
        for _ in range(draw(_retractions)):
            facts.append(
                StatementRetracted(
                    _PLACEHOLDER,
                    draw(_fact_times),
                    statement_id,
                    reason=draw(_reasons),
                )
            )

    # Event ids in an order unrelated to creation, so version ties on
    # ``time`` are broken by ids that are not in list order.
    numbers = draw(st.permutations(range(len(facts))))
    named = [replace(fact, event_id=f"e{n:03d}") for fact, n in zip(facts, numbers, strict=True)]
    return draw(st.permutations(named))

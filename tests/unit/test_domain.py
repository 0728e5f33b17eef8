"""The pure domain core: stance rules, the statement and timeline folds, roll-ups.

Worked examples pin each rule of DESIGN.md "Semantics every projection obeys";
the hypothesis properties at the end check the fold as a whole against those
rules (order independence, idempotence, timeline invariants, roll-up scope)
on small worlds built to collide on times and ids.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stanceline.contract import Rejection, parse_event
from stanceline.domain.catalogue import Actor, Topic, descendants, lineage, makes_cycle
from stanceline.domain.facts import (
    ActorRegistered,
    Fact,
    StatementBody,
    StatementCorrected,
    StatementFact,
    StatementRecorded,
    StatementRetracted,
    TopicRegistered,
    version_of,
)
from stanceline.domain.projection import Projection, SeriesKey, project
from stanceline.domain.rollup import buckets, contest, current
from stanceline.domain.stance import Change, Stance, change_between, default_score
from stanceline.domain.statements import StatementState, apply_statement_fact
from stanceline.domain.timeline import Point, as_of, timeline
from stanceline.store.translate import fact_of
from support.strategies import worlds

FOUNDING = Path(__file__).resolve().parents[2] / "contracts" / "examples" / "founding-example.jsonl"
ARMS = "us-arms-strikes-inside-russia"
NSC_2023 = "2023-05-24.us.nsc.arms-inside-russia"
WH_MAY_2024 = "2024-05-30.us.white-house.arms-inside-russia"
WH_NOV_2024 = "2024-11-17.us.white-house.arms-inside-russia"

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)
SUP, OPP, NEU = Stance.SUPPORT, Stance.OPPOSE, Stance.NEUTRAL


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def body(
    stance: Stance = SUP,
    *,
    actor: str = "us",
    topic: str = "arms",
    said: float = 0,
    quote: str | None = None,
) -> StatementBody:
    return StatementBody(actor, topic, at(said), stance, default_score(stance), 1.0, quote=quote)


def fold_statement(facts: Iterable[StatementFact]) -> StatementState | None:
    state: StatementState | None = None
    for fact in facts:
        state = apply_statement_fact(state, fact)
    return state


def effective_in_every_order(facts: Sequence[StatementFact]) -> set[StatementBody | None]:
    """The effective body after each arrival order; one element when order does not matter."""
    found: set[StatementBody | None] = set()
    for order in itertools.permutations(facts):
        state = fold_statement(order)
        assert state is not None
        found.add(state.effective)
    return found


def summary(points: list[Point]) -> list[tuple[str, Stance, Change, str | None]]:
    return [(p.statement_id, p.body.stance, p.change, p.previous_statement_id) for p in points]


# --- 1. change_between ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "now", "expected"),
    [
        (None, SUP, Change.NONE),
        (None, OPP, Change.NONE),
        (None, NEU, Change.NONE),
        (SUP, SUP, Change.NONE),
        (OPP, OPP, Change.NONE),
        (NEU, NEU, Change.NONE),
        (NEU, SUP, Change.SHIFT),
        (NEU, OPP, Change.SHIFT),
        (SUP, NEU, Change.SHIFT),
        (OPP, NEU, Change.SHIFT),
        (SUP, OPP, Change.FLIP),
        (OPP, SUP, Change.FLIP),
    ],
)
def test_change_between(previous: Stance | None, now: Stance, expected: Change) -> None:
    assert change_between(previous, now) is expected


def test_change_between_covers_every_pair() -> None:
    kinds = {(p, c): change_between(p, c) for p in [None, *Stance] for c in Stance}
    assert [pair for pair, kind in kinds.items() if kind is Change.FLIP] == [(SUP, OPP), (OPP, SUP)]


# --- 2. the life of one statement -----------------------------------------------------


def test_recorded_statement_is_effective() -> None:
    b = body(OPP)
    state = fold_statement([StatementRecorded("e1", at(0), "s1", b)])
    assert state == StatementState("s1", body=b, recorded_by="e1")
    assert state.effective == b


def test_correction_supersedes_recorded_body_in_either_order() -> None:
    original, fixed = body(OPP), body(NEU, said=3)
    facts: list[StatementFact] = [
        StatementRecorded("e1", at(5), "s1", original),
        # Earlier in time than the recording: a correction still supersedes it.
        StatementCorrected("e0", at(0), "s1", fixed),
    ]
    assert effective_in_every_order(facts) == {fixed}


def test_latest_correction_wins_by_time_then_event_id() -> None:
    original = body(OPP)
    late_low_id = body(NEU, quote="late, e1")
    early_high_id = body(SUP, quote="early, e9")
    late_high_id = body(SUP, quote="late, e2")
    facts: list[StatementFact] = [
        StatementRecorded("e0", at(0), "s1", original),
        StatementCorrected("e1", at(2), "s1", late_low_id),
        StatementCorrected("e9", at(1), "s1", early_high_id),
        StatementCorrected("e2", at(2), "s1", late_high_id),
    ]
    assert effective_in_every_order(facts) == {late_high_id}


def test_corrections_at_the_same_time_are_ordered_by_event_id() -> None:
    a, b = body(OPP, quote="a"), body(NEU, quote="b")
    facts: list[StatementFact] = [
        StatementRecorded("rec", at(0), "s1", body()),
        StatementCorrected("corr-b", at(1), "s1", b),
        StatementCorrected("corr-a", at(1), "s1", a),
    ]
    assert effective_in_every_order(facts) == {b}


def test_retraction_hides_the_statement() -> None:
    b = body()
    state = fold_statement(
        [
            StatementRecorded("e1", at(0), "s1", b),
            StatementRetracted("e2", at(1), "s1", reason="misattributed"),
        ]
    )
    assert state is not None
    assert state.effective is None
    assert state.retracted_by == (at(1), "e2")
    assert state.retraction_reason == "misattributed"


def test_retraction_before_the_statement_still_hides_it_once_recorded() -> None:
    b = body()
    retracted = fold_statement([StatementRetracted("e2", at(0), "s1")])
    assert retracted is not None
    assert retracted.effective is None
    state = apply_statement_fact(retracted, StatementRecorded("e1", at(1), "s1", b))
    assert state.recorded_by == "e1"
    assert state.effective is None


def test_retraction_hides_a_corrected_statement_in_every_order() -> None:
    facts: list[StatementFact] = [
        StatementRecorded("e1", at(0), "s1", body()),
        StatementCorrected("e2", at(2), "s1", body(OPP)),
        StatementRetracted("e3", at(1), "s1"),
    ]
    assert effective_in_every_order(facts) == {None}


def test_latest_retraction_reason_is_kept_in_every_order() -> None:
    facts: list[StatementFact] = [
        StatementRetracted("e2", at(1), "s1", reason="later"),
        StatementRetracted("e9", at(0), "s1", reason="earlier"),
    ]
    for order in itertools.permutations(facts):
        state = fold_statement(order)
        assert state is not None
        assert (state.retraction_reason, state.retracted_by) == ("later", (at(1), "e2"))


def test_correction_alone_is_not_on_a_timeline_until_recorded() -> None:
    fixed = body(NEU)
    alone = fold_statement([StatementCorrected("e2", at(1), "s1", fixed)])
    assert alone is not None
    assert alone.body == fixed
    assert alone.effective is None
    assert project([StatementCorrected("e2", at(1), "s1", fixed)]).visible() == []

    state = apply_statement_fact(alone, StatementRecorded("e1", at(0), "s1", body()))
    assert state.effective == fixed


# --- 3. timelines ---------------------------------------------------------------------


def test_timeline_orders_by_said_at_then_statement_id() -> None:
    points = timeline(
        [
            ("c", body(SUP, said=2)),
            ("b", body(OPP, said=1)),
            ("z", body(OPP, said=0)),
            ("a", body(NEU, said=1)),
            ("d", body(OPP, said=3)),
        ]
    )
    assert summary(points) == [
        ("z", OPP, Change.NONE, None),
        ("a", NEU, Change.SHIFT, "z"),
        ("b", OPP, Change.SHIFT, "a"),
        ("c", SUP, Change.FLIP, "b"),
        ("d", OPP, Change.FLIP, "c"),
    ]


def test_timeline_repeated_stance_is_not_a_change() -> None:
    points = timeline([("s1", body(OPP, said=0)), ("s2", body(OPP, said=1))])
    assert summary(points) == [("s1", OPP, Change.NONE, None), ("s2", OPP, Change.NONE, "s1")]
    assert timeline([]) == []


def test_as_of_keeps_points_said_at_or_before_the_moment() -> None:
    points = timeline([("s1", body(OPP, said=0)), ("s2", body(SUP, said=1))])
    assert as_of(points, None) == points
    assert as_of(points, at(1)) == points
    assert as_of(points, at(0.5)) == points[:1]
    assert as_of(points, at(-1)) == []


def founding_facts() -> list[Fact]:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    found: list[Fact] = []
    for raw in FOUNDING.read_bytes().splitlines():
        if raw.strip():
            event = parse_event(raw, now=now)
            assert not isinstance(event, Rejection), event
            found.append(fact_of(event))
    return found


@pytest.fixture(scope="module")
def founding() -> list[Fact]:
    return founding_facts()


def test_founding_example_is_accepted_whole(founding: list[Fact]) -> None:
    projection = Projection()
    assert [projection.apply(f) for f in founding] == [None] * len(founding)
    assert len(founding) == 24
    assert descendants(projection.parents, "us") == {"us", "us.white-house", "us.nsc", "us.dod"}


def test_founding_example_us_rollup(founding: list[Fact]) -> None:
    history = project(founding).history("us", ARMS, include_descendants=True)
    assert [(p.body.said_at.date().isoformat(), p.body.stance, p.change) for p in history] == [
        ("2023-05-24", OPP, Change.NONE),
        ("2024-05-30", NEU, Change.SHIFT),
        ("2024-11-17", SUP, Change.SHIFT),
    ]
    assert [p.previous_statement_id for p in history] == [None, NSC_2023, WH_MAY_2024]


def test_founding_example_previous_point_is_of_the_merged_series(founding: list[Fact]) -> None:
    projection = project(founding)
    # The US said nothing itself; the White House's own series starts in May 2024.
    assert projection.history("us", ARMS, include_descendants=False) == []
    assert summary(projection.history("us.white-house", ARMS, include_descendants=False)) == [
        (WH_MAY_2024, NEU, Change.NONE, None),
        (WH_NOV_2024, SUP, Change.SHIFT, WH_MAY_2024),
    ]


def test_founding_example_without_the_neutral_step_is_a_flip(founding: list[Fact]) -> None:
    retraction = StatementRetracted("retract-may", at(400), WH_MAY_2024, reason="test")
    history = project([*founding, retraction]).history("us", ARMS, include_descendants=True)
    assert summary(history) == [
        (NSC_2023, OPP, Change.NONE, None),
        (WH_NOV_2024, SUP, Change.FLIP, NSC_2023),
    ]


def test_founding_example_us_is_contested_once_the_white_house_supports(
    founding: list[Fact],
) -> None:
    projection = project(founding)
    scope = descendants(projection.parents, "us")

    def us_contest(moment: datetime | None) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
        stances = projection.current_stances(ARMS, scope, moment)
        result = contest((a, p.body.stance) for a, p in stances.items())
        return result.contested, result.supporting, result.opposing

    assert us_contest(None) == (True, ("us.white-house",), ("us.nsc",))
    assert us_contest(datetime(2024, 6, 1, tzinfo=UTC)) == (False, (), ("us.nsc",))


# --- 4. the catalogue -----------------------------------------------------------------

TREE: dict[str, str | None] = {"us": None, "wh": "us", "nsc": "wh", "dod": "us", "ua": None}


def test_lineage_runs_from_the_actor_to_the_root() -> None:
    assert lineage(TREE, "nsc") == ["nsc", "wh", "us"]
    assert lineage(TREE, "us") == ["us"]
    assert lineage(TREE, "unknown") == ["unknown"]


def test_lineage_stops_on_a_corrupt_cycle() -> None:
    assert lineage({"x": "y", "y": "z", "z": "x"}, "x") == ["x", "y", "z"]


def test_descendants_are_the_actor_and_everything_below_it() -> None:
    assert descendants(TREE, "us") == {"us", "wh", "nsc", "dod"}
    assert descendants(TREE, "wh") == {"wh", "nsc"}
    assert descendants(TREE, "nsc") == {"nsc"}
    assert descendants(TREE, "unknown") == {"unknown"}


@pytest.mark.parametrize(
    ("actor", "parent", "cycle"),
    [
        ("us", "us", True),  # its own parent
        ("wh", "wh", True),
        ("us", "wh", True),  # us → wh → us
        ("us", "nsc", True),  # us → nsc → wh → us
        ("wh", "nsc", True),
        ("nsc", "dod", False),  # a move sideways
        ("dod", "nsc", False),
        ("ua", "nsc", False),
        ("new", "nsc", False),
        ("nsc", "new", False),
        ("us", None, False),
        ("nsc", None, False),
    ],
)
def test_makes_cycle(actor: str, parent: str | None, cycle: bool) -> None:
    assert makes_cycle(TREE, actor, parent) is cycle


def register(
    actor: str, parent: str | None = None, *, event: str | None = None, time: float = 0
) -> ActorRegistered:
    return ActorRegistered(
        event or f"reg-{actor}-{time}", at(time), actor, f"name of {actor}", "organisation", parent
    )


@pytest.mark.parametrize(
    ("actor", "parent"), [("a", "a"), ("a", "b"), ("a", "c"), ("b", "c")], ids=str
)
def test_cyclic_registration_is_rejected_and_changes_nothing(actor: str, parent: str) -> None:
    projection = project([register("a"), register("b", "a"), register("c", "b")])
    before = copy.deepcopy(projection)
    fact = register(actor, parent, time=1)

    reason = projection.apply(fact)

    assert reason is not None
    assert "parent_id" in reason
    assert "cycle" in reason
    assert projection == before
    assert projection.parents == {"a": None, "b": "a", "c": "b"}


@pytest.mark.parametrize("later", ["newer", "same-time-higher-id"])
def test_re_registration_moves_the_actor_in_either_order(later: str) -> None:
    old = register("x", "left", event="reg-1", time=0)
    new = register("x", "right", event="reg-2", time=0 if later == "same-time-higher-id" else 1)
    for order in ([old, new], [new, old]):
        projection = project([register("left"), register("right"), *order])
        assert projection.parents["x"] == "right"
        assert projection.actors["x"].registered_by == version_of(new)
        assert descendants(projection.parents, "right") == {"right", "x"}
        assert descendants(projection.parents, "left") == {"left"}


def test_an_actor_named_only_by_a_statement_exists_with_its_id_as_name() -> None:
    projection = project(
        [StatementRecorded("e1", at(0), "s1", body(actor="stray", topic="untitled"))]
    )
    assert projection.actors == {"stray": Actor("stray", "stray")}
    assert projection.actors["stray"].kind is None
    assert projection.topics == {"untitled": Topic("untitled", "untitled")}


def test_an_actor_named_only_as_a_parent_exists_and_registering_it_replaces_that() -> None:
    projection = project([register("child", "parent")])
    assert projection.actors["parent"] == Actor("parent", "parent")
    projection.apply(register("parent", time=1))
    assert projection.actors["parent"].name == "name of parent"
    assert projection.actors["parent"].kind == "organisation"


def test_topic_registration_latest_wins_in_either_order() -> None:
    old = TopicRegistered("t-1", at(0), "arms", "Old title", "policy")
    new = TopicRegistered("t-2", at(1), "arms", "New title", "claim", "why")
    for order in ([old, new], [new, old]):
        assert project(order).topics["arms"] == Topic(
            "arms", "New title", "claim", "why", version_of(new)
        )


# --- 5. Projection.apply: idempotence and conflicts ------------------------------------


def test_same_event_id_with_an_equal_fact_is_a_no_op() -> None:
    b = body()
    projection = project([register("us"), StatementRecorded("e1", at(0), "s1", b)])
    before = copy.deepcopy(projection)
    # An equal fact rebuilt from scratch, not the same object: a redelivery.
    assert projection.apply(StatementRecorded("e1", at(0), "s1", body())) is None
    assert projection.apply(register("us")) is None
    assert projection == before


@pytest.mark.parametrize(
    "reuse",
    [
        StatementRecorded("e1", at(0), "s1", body(OPP)),
        StatementRecorded("e1", at(0), "s2", body()),
        StatementRetracted("e1", at(0), "s1"),
        ActorRegistered("e1", at(0), "us", "United States", "state"),
    ],
    ids=["other-body", "other-statement", "other-type", "registration"],
)
def test_same_event_id_with_another_fact_is_a_conflict(reuse: Fact) -> None:
    projection = project([StatementRecorded("e1", at(0), "s1", body())])
    before = copy.deepcopy(projection)
    reason = projection.apply(reuse)
    assert reason is not None
    assert reason.startswith("conflict")
    assert projection == before


def test_second_recording_with_another_body_is_rejected() -> None:
    first = body(OPP)
    projection = project([StatementRecorded("e1", at(0), "s1", first)])
    before = copy.deepcopy(projection)

    reason = projection.apply(StatementRecorded("e2", at(1), "s1", body(SUP)))

    assert reason is not None
    assert "already recorded" in reason
    assert projection == before
    assert projection.statements["s1"].effective == first


def test_second_recording_with_the_same_body_is_accepted_and_changes_nothing_visible() -> None:
    projection = project([StatementRecorded("e1", at(0), "s1", body())])
    assert projection.apply(StatementRecorded("e2", at(1), "s1", body())) is None
    assert projection.visible() == [("s1", body())]


def test_second_recording_after_a_correction_is_compared_with_the_recorded_body() -> None:
    first, fixed = body(OPP), body(NEU)
    projection = project(
        [StatementRecorded("e1", at(0), "s1", first), StatementCorrected("e2", at(1), "s1", fixed)]
    )
    assert projection.apply(StatementRecorded("e3", at(2), "s1", first)) is None
    assert projection.apply(StatementRecorded("e4", at(2), "s1", fixed)) is not None
    assert projection.statements["s1"].effective == fixed


# --- 6. roll-ups ------------------------------------------------------------------------


def test_current_is_the_last_point_said_at_or_before_the_moment() -> None:
    points = timeline(
        [("s1", body(OPP, said=0)), ("s2", body(NEU, said=2)), ("s3", body(SUP, said=5))]
    )
    assert current(points) == points[-1]
    assert current(points, None) == points[-1]
    assert current(points, at(2)) == points[1]  # said exactly then: included
    assert current(points, at(4.9)) == points[1]
    assert current(points, at(100)) == points[-1]
    assert current(points, at(-1)) is None
    assert current([], None) is None


def test_contest_needs_both_sides() -> None:
    both = contest([("z", SUP), ("b", OPP), ("a", SUP), ("n", NEU), ("c", OPP)])
    assert (both.contested, both.supporting, both.opposing) == (True, ("a", "z"), ("b", "c"))

    one_side = contest([("a", SUP), ("n", NEU), ("b", SUP)])
    assert (one_side.contested, one_side.supporting, one_side.opposing) == (False, ("a", "b"), ())

    assert contest([("a", OPP)]).contested is False
    assert contest([("n", NEU)]).contested is False
    nobody = contest([])
    assert (nobody.contested, nobody.supporting, nobody.opposing) == (False, (), ())


def test_buckets_weigh_scores_by_confidence_and_keep_the_last_point() -> None:
    monday = datetime(2024, 1, 1, 9, tzinfo=UTC)  # 2024-01-01 is a Monday
    low = StatementBody("us", "arms", monday, OPP, -1.0, 0.25)
    high = StatementBody("us", "arms", monday + timedelta(days=2), SUP, 1.0, 0.75)
    unsure = StatementBody("us", "arms", monday + timedelta(days=7), NEU, 0.0, 0.0)
    points = timeline([("s1", low), ("s2", high), ("s3", unsure)])

    weeks = buckets(points, "week")
    assert [(b.start, b.count, b.last_stance, b.last_statement_id) for b in weeks] == [
        (datetime(2024, 1, 1, tzinfo=UTC), 2, SUP, "s2"),
        (datetime(2024, 1, 8, tzinfo=UTC), 1, NEU, "s3"),
    ]
    assert weeks[0].mean_score == pytest.approx(0.5)
    assert weeks[1].mean_score is None
    assert [b.count for b in buckets(points, "month")] == [3]
    assert [b.count for b in buckets(points, "day")] == [1, 1, 1]


# --- 7. properties of the whole fold ----------------------------------------------------


def effective_bodies(projection: Projection) -> dict[str, StatementBody | None]:
    return {sid: state.effective for sid, state in projection.statements.items()}


def registered(projection: Projection) -> tuple[dict[str, Actor], dict[str, Topic]]:
    """The whole catalogue: registered ids and ids only named by some statement body."""
    return (dict(projection.actors), dict(projection.topics))


def spec_effective(facts: Iterable[Fact]) -> dict[str, StatementBody | None]:
    """DESIGN.md read literally: recorded and not retracted; the latest correction, if any."""
    by_statement: dict[str, list[StatementFact]] = {}
    for fact in facts:
        if isinstance(fact, StatementRecorded | StatementCorrected | StatementRetracted):
            by_statement.setdefault(fact.statement_id, []).append(fact)
    result: dict[str, StatementBody | None] = {}
    for sid, group in by_statement.items():
        recordings = [f for f in group if isinstance(f, StatementRecorded)]
        corrections = [f for f in group if isinstance(f, StatementCorrected)]
        if not recordings or any(isinstance(f, StatementRetracted) for f in group):
            result[sid] = None
        elif corrections:
            result[sid] = max(corrections, key=version_of).body
        else:
            result[sid] = recordings[0].body
    return result


def spec_parents(facts: Iterable[Fact]) -> dict[str, str | None]:
    """Each actor's parent by its latest registration."""
    latest: dict[str, ActorRegistered] = {}
    for fact in facts:
        if isinstance(fact, ActorRegistered):
            held = latest.get(fact.actor_id)
            if held is None or version_of(fact) > version_of(held):
                latest[fact.actor_id] = fact
    return {actor: fact.parent_id for actor, fact in latest.items()}


def ancestors(parents: dict[str, str | None], actor: str) -> list[str]:
    """The actor and those above it; worlds() never builds a cycle."""
    chain = [actor]
    while (parent := parents.get(chain[-1])) is not None:
        chain.append(parent)
    return chain


def check_order_independence(facts: list[Fact], reordered: list[Fact]) -> None:
    original, permuted = project(facts), project(reordered)
    assert permuted.series() == original.series()
    assert effective_bodies(permuted) == effective_bodies(original)
    assert registered(permuted) == registered(original)


def check_idempotence(facts: list[Fact], with_duplicates: list[Fact]) -> None:
    once, twice = project(facts), project(with_duplicates)
    assert twice.series() == once.series()
    assert effective_bodies(twice) == effective_bodies(once)

    again = copy.deepcopy(once)
    assert [again.apply(f) for f in facts] == [None] * len(facts)
    assert again == once


def check_series_invariants(series: dict[SeriesKey, list[Point]]) -> None:
    for (actor, topic, rollup), points in series.items():
        assert points, "series() reports only non-empty series"
        assert {p.body.topic_id for p in points} == {topic}
        if not rollup:
            assert {p.body.actor_id for p in points} == {actor}
        previous: Point | None = None
        for point in points:
            if previous is not None:
                assert (previous.body.said_at, previous.statement_id) < (
                    point.body.said_at,
                    point.statement_id,
                )
            assert point.change is change_between(
                previous.body.stance if previous else None, point.body.stance
            )
            assert point.previous_statement_id == (previous.statement_id if previous else None)
            previous = point


def check_against_spec(facts: list[Fact]) -> None:
    projection = Projection()
    assert [projection.apply(f) for f in facts] == [None] * len(facts), "a valid world"
    spec = spec_effective(facts)
    assert effective_bodies(projection) == spec

    series = projection.series()
    own_expected: dict[tuple[str, str], set[tuple[str, StatementBody]]] = {}
    for sid, b in spec.items():
        if b is not None:
            own_expected.setdefault((b.actor_id, b.topic_id), set()).add((sid, b))
    own = {
        (a, t): {(p.statement_id, p.body) for p in ps} for (a, t, r), ps in series.items() if not r
    }
    assert own == own_expected

    parents = spec_parents(facts)
    rollup_expected: dict[tuple[str, str], set[tuple[str, StatementBody]]] = {}
    for (actor, topic), members in own.items():
        for ancestor in ancestors(parents, actor):
            rollup_expected.setdefault((ancestor, topic), set()).update(members)
    rollups = {
        (a, t): {(p.statement_id, p.body) for p in ps} for (a, t, r), ps in series.items() if r
    }
    assert rollups == rollup_expected
    for (actor, topic, rollup), points in series.items():
        assert projection.history(actor, topic, rollup) == points


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data(), facts=worlds())
def test_any_arrival_order_gives_the_same_projection(
    data: st.DataObject, facts: list[Fact]
) -> None:
    check_order_independence(facts, data.draw(st.permutations(facts), label="reordered"))


@PROPERTY
@given(data=st.data(), facts=worlds())
def test_duplicates_anywhere_change_nothing(data: st.DataObject, facts: list[Fact]) -> None:
    extra = data.draw(st.lists(st.sampled_from(facts), max_size=len(facts)), label="duplicates")
    check_idempotence(facts, data.draw(st.permutations(facts + extra), label="with_duplicates"))


@PROPERTY
@given(facts=worlds())
def test_series_are_ordered_and_their_changes_follow_the_rule(facts: list[Fact]) -> None:
    check_series_invariants(project(facts).series())


@PROPERTY
@given(facts=worlds())
def test_series_hold_the_effective_statements_and_roll_up_descendants(
    facts: list[Fact],
) -> None:
    check_against_spec(facts)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), facts=worlds())
def test_all_properties_thoroughly(data: st.DataObject, facts: list[Fact]) -> None:
    reordered = data.draw(st.permutations(facts), label="reordered")
    extra = data.draw(st.lists(st.sampled_from(facts), max_size=len(facts)), label="duplicates")
    check_order_independence(facts, reordered)
    check_idempotence(facts, data.draw(st.permutations(facts + extra), label="with_duplicates"))
    check_series_invariants(project(facts).series())
    check_against_spec(facts)


# --- regressions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "facts",
    [
        [
            StatementRecorded("e1", at(0), "s1", body(actor="first", topic="t-first")),
            StatementCorrected("e2", at(1), "s1", body(actor="fixed", topic="t-fixed")),
        ],
        [
            StatementRecorded("e1", at(0), "s1", body(actor="fixed", topic="t-fixed")),
            StatementCorrected("e2", at(1), "s1", body(actor="older", topic="t-older")),
            StatementCorrected("e3", at(2), "s1", body(actor="fixed", topic="t-fixed")),
        ],
    ],
    ids=["recorded-then-corrected", "stale-correction"],
)
def test_catalogue_does_not_depend_on_arrival_order(facts: list[Fact]) -> None:
    catalogues = {
        (tuple(sorted(p.actors)), tuple(sorted(p.topics)))
        for p in map(project, itertools.permutations(facts))
    }
    assert len(catalogues) == 1, catalogues

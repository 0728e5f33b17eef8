"""The feed rule on a window is exact: it equals the difference of whole timelines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from stanceline.domain.feed import ChangePoint, Key, Series, feed_diff, window_feed
from stanceline.domain.stance import Change, Stance, change_between

SERIES = Series("t", "a", True)
_DAY = datetime(2024, 1, 1, tzinfo=UTC)
stances = st.sampled_from(list(Stance))


def whole_changes(points: dict[Key, Stance]) -> list[ChangePoint]:
    """Every change point of a whole series, by walking it from the start."""
    found = []
    previous: tuple[Key, Stance] | None = None
    for key in sorted(points):
        change = change_between(previous[1] if previous else None, points[key])
        if change is not Change.NONE and previous is not None:
            found.append(
                ChangePoint(
                    SERIES.topic_id,
                    SERIES.actor_id,
                    SERIES.rollup,
                    key[0],
                    key[1],
                    points[key].value,
                    change,
                    previous[0][1],
                    previous[1].value,
                )
            )
        previous = (key, points[key])
    return found


def window_of(points: dict[Key, Stance], touched: set[Key]) -> dict[Key, Stance]:
    """What the store reads: each touched key's point where it has one, with the point
    before it and the point after it."""
    ordered = sorted(points)
    window = []
    for key in touched:
        window += [k for k in ordered if k < key][-1:]
        window += [k for k in ordered if k == key]
        window += [k for k in ordered if k > key][:1]
    return {k: points[k] for k in window}


days = st.sampled_from([_DAY + timedelta(days=n) for n in range(6)])
SIDS = [f"s{n}" for n in range(8)]


@settings(max_examples=500)
@given(
    before=st.dictionaries(st.sampled_from(SIDS), st.tuples(days, stances), max_size=8),
    after=st.dictionaries(st.sampled_from(SIDS), st.tuples(days, stances), max_size=8),
    touched=st.sets(st.sampled_from(SIDS), min_size=1),
)
def test_a_window_feeds_what_the_whole_timelines_differ_by(
    before: dict[str, tuple[datetime, Stance]],
    after: dict[str, tuple[datetime, Stance]],
    touched: set[str],
) -> None:
    """Statements (each on the series at most once) arrive, move, change stance or leave;
    those the write does not touch stay as they were."""
    kept = {sid: v for sid, v in before.items() if sid not in touched}
    after = kept | {sid: v for sid, v in after.items() if sid in touched}
    old = {(day, sid): stance for sid, (day, stance) in before.items()}
    new = {(day, sid): stance for sid, (day, stance) in after.items()}
    removed = {k for k in old if k[1] in touched}
    added = {k: s for k, s in new.items() if k[1] in touched}
    keys = removed | set(added)
    if not keys:
        return

    fed = window_feed(SERIES, window_of(old, keys), removed, added)

    assert fed == feed_diff(whole_changes(old), whole_changes(new))


def test_an_append_after_the_tip_needs_only_the_tip() -> None:
    tip = (_DAY, "s0")
    later = (_DAY + timedelta(days=1), "s1")
    withdrawn, added = window_feed(SERIES, {tip: Stance.OPPOSE}, (), {later: Stance.SUPPORT})
    assert withdrawn == []
    assert [(p.statement_id, p.change, p.previous_statement_id) for p in added] == [
        ("s1", Change.FLIP, "s0")
    ]


def test_a_late_statement_between_two_points_rewrites_the_next_one() -> None:
    first, late, last = (
        (_DAY, "s0"),
        (_DAY + timedelta(days=1), "s1"),
        (_DAY + timedelta(days=2), "s2"),
    )
    window = {first: Stance.OPPOSE, last: Stance.SUPPORT}
    withdrawn, added = window_feed(SERIES, window, (), {late: Stance.NEUTRAL})
    assert [(p.statement_id, p.change.value, p.previous_statement_id) for p in withdrawn] == [
        ("s2", "flip", "s0")
    ]
    assert [(p.statement_id, p.change.value, p.previous_statement_id) for p in added] == [
        ("s1", "shift", "s0"),
        ("s2", "shift", "s1"),
    ]

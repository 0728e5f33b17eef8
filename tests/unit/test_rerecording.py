"""The conflict rule in the fold: a re-recording is compared by body, not by spelling."""

from __future__ import annotations

from typing import Any

import pytest

from stanceline.domain.projection import Projection
from stanceline.store.translate import fact_of
from support.events import parsed, statement

SAME_BODY = [
    ({}, {"score": 1.0, "confidence": 1}),
    ({"said_at": "2024-01-01T00:00:00Z"}, {"said_at": "2024-01-01T00:00:00+00:00"}),
    ({"said_at": "2024-01-01T02:00:00+02:00"}, {"said_at": "2024-01-01T00:00:00Z"}),
]


@pytest.mark.parametrize(("first", "again"), SAME_BODY)
def test_the_same_body_spelt_otherwise_is_accepted(
    first: dict[str, Any], again: dict[str, Any]
) -> None:
    base = {"said_at": "2024-01-01T00:00:00Z"}
    one = fact_of(parsed(statement("e1", "s1", "a", "t", "support", **(base | first))))
    two = fact_of(parsed(statement("e2", "s1", "a", "t", "support", **(base | again))))
    for order in ((one, two), (two, one)):
        projection = Projection()
        assert [projection.apply(f) for f in order] == [None, None]
        assert projection.statements["s1"].recorded_by == "e1"


def test_another_body_is_a_conflict() -> None:
    one = fact_of(parsed(statement("e1", "s1", "a", "t", "support", "2024-01-01T00:00:00Z")))
    two = fact_of(
        parsed(statement("e2", "s1", "a", "t", "support", "2024-01-01T00:00:00Z", score=0.5))
    )
    projection = Projection()
    assert projection.apply(one) is None
    assert projection.apply(two) == "conflict: statement already recorded with another body"

"""The agreement network's formulas against numbers worked out by hand, and their order
independence (hypothesis): no server, only ``domain/network.py``."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stanceline.domain.network import (
    Aggregation,
    Edge,
    Kernel,
    Normalization,
    Said,
    Window,
    agreement_networks,
    kernel_value,
    layout,
    window_count,
)
from stanceline.domain.stance import Stance

P, Z, N = Stance.SUPPORT, Stance.NEUTRAL, Stance.OPPOSE


def day(d: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, d, hour, tzinfo=UTC)


def said(node: str, topic: str, at: datetime, stance: Stance, sid: str) -> Said:
    return Said(node, topic, at, sid, stance)


# Two windows of two days, Jan 1-3 and Jan 3-5, triangular kernel. Weights by hand:
# u = (said_at - middle) / 1 day, w = 1 - |u|.
TWO_WINDOWS = [
    said("a", "t1", day(2), P, "s1"),  # window 0: u = 0, w = 1
    said("b", "t1", day(1, 12), N, "s2"),  # window 0: u = -1/2, w = 1/2
    said("b", "t1", day(3), Z, "s3"),  # both windows' boundary: |u| = 1, w = 0
    said("c", "t1", day(2, 6), P, "s4"),  # window 0: u = 1/4, w = 3/4
    said("a", "t2", day(4), P, "s5"),  # window 1: w = 1
    said("b", "t2", day(4, 12), N, "s6"),  # window 1: w = 1/2
    said("c", "t2", day(3, 12), Z, "s7"),  # window 1: w = 1/2
]


def test_windows_start_at_from_every_step_and_end_by_to() -> None:
    assert layout(day(1), day(5), timedelta(days=2), None) == [
        Window(day(1), day(3)),
        Window(day(3), day(5)),
    ]
    assert [w.start for w in layout(day(1), day(5), timedelta(days=2), timedelta(days=1))] == [
        day(1),
        day(2),
        day(3),
    ]
    assert layout(day(1), day(5), None, None) == [Window(day(1), day(5))]
    assert layout(day(1), day(2), timedelta(days=2), None) == []
    assert window_count(day(1), day(5), timedelta(days=2), timedelta(days=1)) == 3
    assert Window(day(1), day(3)).middle == day(2)


def test_kernels_are_the_documented_formulas() -> None:
    assert kernel_value(Kernel.UNIFORM, 0.9) == 1.0
    assert kernel_value(Kernel.TRIANGULAR, -0.25) == 0.75
    assert kernel_value(Kernel.EPANECHNIKOV, 0.5) == 0.75 * 0.75
    assert kernel_value(Kernel.GAUSSIAN, 1.0) == math.exp(-0.5)
    for kernel in Kernel:
        assert kernel_value(kernel, 1.0001) == 0.0
        assert kernel_value(kernel, -0.3) == kernel_value(kernel, 0.3)


def test_two_triangular_windows_by_hand() -> None:
    windows = layout(day(1), day(5), timedelta(days=2), None)
    first, second = agreement_networks(TWO_WINDOWS, windows, kernel=Kernel.TRIANGULAR)

    # Window 0, topic t1: a supports (1), b opposes (1/2; its neutral weighs 0), c supports
    # (3/4). a-b: conflict 1 x 1/2; a-c: congruence 1 x 3/4; b-c: conflict 1/2 x 3/4.
    assert first.statements == 4
    assert first.edges == [
        Edge("a", "b", 0.0, 0.5, -0.5),
        Edge("a", "c", 0.75, 0.0, 0.75),
        Edge("b", "c", 0.0, 0.375, -0.375),
    ]
    assert first.polarization == pytest.approx(0.875 / 1.625)

    # Window 1, topic t2: a supports (1), b opposes (1/2), c neutral (1/2).
    # a-c: 1 x 1/2 split half and half; b-c likewise with 1/2 x 1/2.
    assert second.statements == 4  # s3 on the boundary counts in both windows
    assert second.edges == [
        Edge("a", "b", 0.0, 0.5, -0.5),
        Edge("a", "c", 0.25, 0.25, 0.0),
        Edge("b", "c", 0.125, 0.125, 0.0),
    ]
    assert second.polarization == pytest.approx(0.875 / 1.25)


def test_normalisations_divide_the_weight_by_the_degrees() -> None:
    windows = layout(day(1), day(5), timedelta(days=2), None)

    def edges(aggregation: Aggregation, normalization: Normalization) -> list[Edge]:
        return agreement_networks(
            TWO_WINDOWS,
            windows,
            kernel=Kernel.TRIANGULAR,
            aggregation=aggregation,
            normalization=normalization,
        )[0].edges

    # Degrees in window 0: a 1, b 1/2, c 3/4.
    average = edges(Aggregation.SUBTRACT, Normalization.AVERAGE)
    assert [e.weight for e in average] == pytest.approx([-0.5 / 0.75, 0.75 / 0.875, -0.375 / 0.625])
    cosine = edges(Aggregation.CONGRUENCE, Normalization.COSINE)
    assert [e.weight for e in cosine] == pytest.approx([0.0, 0.75 / math.sqrt(0.75), 0.0])
    jaccard = edges(Aggregation.CONFLICT, Normalization.JACCARD)
    assert [e.weight for e in jaccard] == pytest.approx([0.5 / 1.0, 0.0, 0.375 / 0.875])
    # Congruence and conflict stay raw whatever the normalisation.
    assert [(e.congruence, e.conflict) for e in jaccard] == [(0.0, 0.5), (0.75, 0.0), (0.0, 0.375)]


def test_an_actor_with_only_zero_weight_statements_has_no_edge() -> None:
    windows = layout(day(1), day(3), None, None)
    (only,) = agreement_networks(
        [said("a", "t", day(1), P, "x"), said("b", "t", day(3), N, "y")],
        windows,
        kernel=Kernel.TRIANGULAR,
    )
    assert (only.statements, only.edges, only.polarization) == (2, [], None)


moments = st.integers(min_value=0, max_value=4 * 24).map(lambda h: day(1) + timedelta(hours=h))


def one_statement_one_body(items: list[Said]) -> list[Said]:
    """A statement id has one time, topic and stance; only its node varies (a statement
    counts for every listed actor it stands below)."""
    first: dict[str, Said] = {}
    return [first.setdefault(s.statement_id, s)._replace(node=s.node) for s in items]


statements = st.lists(
    st.builds(
        Said,
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from(["t1", "t2"]),
        moments,
        st.text("xyz", min_size=1, max_size=3),
        st.sampled_from(list(Stance)),
    ),
    max_size=25,
    unique_by=lambda s: (s.statement_id, s.node),
).map(one_statement_one_body)


@settings(max_examples=150, deadline=None)
@given(statements, st.randoms(use_true_random=False), st.sampled_from(list(Kernel)))
def test_permuting_the_statements_changes_nothing(
    items: list[Said], random: Random, kernel: Kernel
) -> None:
    windows = layout(day(1), day(5), timedelta(days=1), timedelta(hours=12))
    shuffled = list(items)
    random.shuffle(shuffled)
    for normalization in Normalization:
        expected = agreement_networks(items, windows, kernel=kernel, normalization=normalization)
        assert (
            agreement_networks(shuffled, windows, kernel=kernel, normalization=normalization)
            == expected
        )


@settings(max_examples=100, deadline=None)
@given(statements)
def test_pair_sums_equal_the_sum_over_statement_pairs(items: list[Said]) -> None:
    """The factored sums against the definition: every pair of statements, one by one."""
    windows = layout(day(1), day(5), timedelta(days=2), timedelta(days=1))
    networks = agreement_networks(items, windows, kernel=Kernel.EPANECHNIKOV)
    for window, network in zip(windows, networks, strict=True):
        half = (window.stop - window.start) / 2
        inside = [
            (s, kernel_value(Kernel.EPANECHNIKOV, (s.said_at - window.middle) / half))
            for s in items
            if window.start <= s.said_at <= window.stop
        ]
        sign = {P: 1, Z: 0, N: -1}
        expected: dict[tuple[str, str], list[float]] = {}
        for i, wi in inside:
            for j, wj in inside:
                if i.node < j.node and i.topic_id == j.topic_id:
                    f = abs(sign[i.stance] - sign[j.stance]) / 2
                    pair = expected.setdefault((i.node, j.node), [0.0, 0.0])
                    pair[0] += wi * wj * (1 - f)
                    pair[1] += wi * wj * f
        listed = {(e.source, e.target): [e.congruence, e.conflict] for e in network.edges}
        wanted = {k: v for k, v in expected.items() if v[0] + v[1] > 0}
        assert listed.keys() == wanted.keys()
        for key, value in wanted.items():
            assert listed[key] == pytest.approx(value)
        assert network.statements == len({s.statement_id for s, _ in inside})

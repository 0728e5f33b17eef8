"""Agreement networks over time windows: the formulas, with no I/O.

Discourse network analysis asks who agrees with whom on what. Every number an
``/v1/networks/agreement`` answer carries is computed here, from the visible
statements the store hands over, so anyone can check it against the formulas
in the README:

- a window's statements are weighted by a kernel, symmetric about the window's
  middle: w = K(u), u = (said_at − middle) / (length / 2), K(u) = 0 for |u| > 1;
- for actors a ≠ b, over each topic and every pair of a statement i by a and j by b,
  congruence = Σ wᵢ wⱼ (1 − |sᵢ − sⱼ| / 2), conflict = Σ wᵢ wⱼ |sᵢ − sⱼ| / 2, with
  s = +1, 0, −1 for support, neutral, oppose;
- an edge's weight is congruence, conflict or their difference, optionally
  normalised by the actors' degrees dₐ = Σ wᵢ.

The pair sums factor through per-(window, topic, actor, stance) weight sums
(Σ over pairs of wᵢ wⱼ f(sᵢ, sⱼ) = Σ over stance pairs of Wₐ,ₛ W_b,ₜ f(s, t)), so the
work is the number of pairs of actors that share a topic in a window, never the
number of pairs of statements. Input order never matters: statements are summed
in (said_at, statement id) order whatever order they come in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from operator import itemgetter
from typing import NamedTuple

from stanceline.domain.stance import Stance


class Kernel(StrEnum):
    UNIFORM = "uniform"
    TRIANGULAR = "triangular"
    EPANECHNIKOV = "epanechnikov"
    GAUSSIAN = "gaussian"


class Aggregation(StrEnum):
    CONGRUENCE = "congruence"
    CONFLICT = "conflict"
    SUBTRACT = "subtract"


class Normalization(StrEnum):
    NONE = "none"
    AVERAGE = "average"
    COSINE = "cosine"
    JACCARD = "jaccard"


_KERNELS: dict[Kernel, Callable[[float], float]] = {
    Kernel.UNIFORM: lambda u: 1.0,
    Kernel.TRIANGULAR: lambda u: 1.0 - abs(u),
    Kernel.EPANECHNIKOV: lambda u: 0.75 * (1.0 - u * u),
    Kernel.GAUSSIAN: lambda u: math.exp(-u * u / 2.0),
}


def kernel_value(kernel: Kernel, u: float) -> float:
    """K(u): every kernel is 0 outside [−1, 1] and symmetric about 0."""
    return 0.0 if abs(u) > 1 else _KERNELS[kernel](u)


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    stop: datetime

    @property
    def middle(self) -> datetime:
        return self.start + (self.stop - self.start) / 2


def layout(
    start: datetime, stop: datetime, length: timedelta | None, step: timedelta | None
) -> list[Window]:
    """Windows start at ``start`` and then every ``step``; one is served when it ends by
    ``stop``. The default window is the whole range; the default step is the window."""
    length = stop - start if length is None else length
    step = length if step is None else step
    if step <= timedelta(0) or length < timedelta(0):
        raise ValueError("window and step must be positive")
    return [
        Window(start + k * step, start + k * step + length)
        for k in range(window_count(start, stop, length, step))
    ]


def window_count(start: datetime, stop: datetime, length: timedelta, step: timedelta) -> int:
    """How many windows ``layout`` would give, without building them (to refuse a huge
    request before any work)."""
    if stop - start < length:
        return 0
    return (stop - start - length) // step + 1


_SLOT = {Stance.SUPPORT: 0, Stance.NEUTRAL: 1, Stance.OPPOSE: 2}
"""Where a stance's weight is summed: s = +1, 0, −1 in that order."""


class Said(NamedTuple):
    """One visible statement as a network sees it: the node it counts for (an actor, or
    a listed actor standing for its sub-organisations), its topic, time and stance. A
    tuple: a network reads a hundred thousand of these, and a tuple is the cheapest
    immutable record to make."""

    node: str
    topic_id: str
    said_at: datetime
    statement_id: str
    stance: Stance


@dataclass(slots=True)
class Edge:
    """Not frozen: a year of weekly windows makes hundreds of thousands of these, and a
    frozen dataclass sets each field through ``object.__setattr__``."""

    source: str
    target: str
    congruence: float
    conflict: float
    weight: float | None
    """Null only where a normalisation's denominator is 0."""


@dataclass(frozen=True, slots=True)
class WindowNetwork:
    window: Window
    statements: int
    polarization: float | None
    edges: list[Edge]


# Per (window index, topic, node number): weight sums by stance sign (+1, 0, −1).
_Sums = list[float]


def agreement_networks(
    said: Iterable[Said],
    windows: Sequence[Window],
    *,
    kernel: Kernel = Kernel.UNIFORM,
    aggregation: Aggregation = Aggregation.SUBTRACT,
    normalization: Normalization = Normalization.NONE,
) -> list[WindowNetwork]:
    """One network per window, edges in (source, target) order, source < target."""
    if not windows:
        return []
    # (said_at, statement id, node): copies of one statement for several nodes come
    # together, so a window counts each statement once by comparing with the last id.
    ordered = sorted(said, key=itemgetter(2, 3, 0))
    # Nodes by number in id order: pair keys are ints, and their order is the ids' order.
    names = sorted({s.node for s in ordered})
    number = {name: i for i, name in enumerate(names)}
    cells: list[dict[str, dict[int, _Sums]]] = [{} for _ in windows]
    degree: list[list[float]] = [[0.0] * len(names) for _ in windows]
    counted = [0] * len(windows)
    spacing = _Spacing.of(windows)
    origin, length, step, last_window = (
        spacing.origin,
        spacing.length,
        spacing.step,
        len(windows) - 1,
    )
    shape = _KERNELS[kernel]
    previous: str | None = None
    for node_id, topic_id, said_at, statement_id, stance in ordered:
        node, slot = number[node_id], _SLOT[stance]
        fresh, previous = statement_id != previous, statement_id
        # Which windows hold said_at, and u = (said_at − middle) / (length / 2) in each:
        # the middle is start + length / 2, so u = (2 (t − start) − length) / length.
        t = (said_at - origin) // _MICROSECOND
        if t < 0:
            continue
        for k in range(max(0, -((length - t) // step)), min(last_window, t // step) + 1):
            u = (2 * (t - k * step) - length) / length if length else 0.0
            counted[k] += fresh
            w = shape(u) if -1.0 <= u <= 1.0 else 0.0
            if w == 0.0:
                continue
            by_node = cells[k].get(topic_id)
            if by_node is None:
                by_node = cells[k][topic_id] = {}
            sums = by_node.get(node)
            if sums is None:
                sums = by_node[node] = [0.0, 0.0, 0.0]
            sums[slot] += w
            degree[k][node] += w
    return [
        _network(windows[k], counted[k], cells[k], degree[k], names, aggregation, normalization)
        for k in range(len(windows))
    ]


_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class _Spacing:
    """Evenly spaced windows in integer microseconds from the first start: which windows
    hold an instant is arithmetic, exact at the bounds, not a scan (an instant on a
    boundary lies in two windows)."""

    origin: datetime
    length: int
    step: int
    count: int

    @classmethod
    def of(cls, windows: Sequence[Window]) -> _Spacing:
        origin = windows[0].start
        length = (windows[0].stop - origin) // _MICROSECOND
        step = (windows[1].start - origin) // _MICROSECOND if len(windows) > 1 else 1
        return cls(origin, length, max(step, 1), len(windows))


def _pair_sums(cells: dict[str, dict[int, _Sums]], size: int) -> tuple[dict[int, float], ...]:
    """(congruence, conflict) summed over the topics for each pair of node numbers a < b,
    keyed a × size + b. With f = |s − t| / 2 (1 between support and oppose, 1/2 between
    neutral and either side, 0 alike), each is a sum over the nine stance pairs of the two
    nodes' weight sums; both are written without a subtraction, so neither can come out
    below 0 by rounding. The hot loop of a network: kept flat on purpose."""
    congruence: dict[int, float] = {}
    conflict: dict[int, float] = {}
    for topic in sorted(cells):
        sums = sorted(cells[topic].items())
        for x, (a, (ap, az, an)) in enumerate(sums):
            base = a * size
            for b, (bp, bz, bn) in sums[x + 1 :]:
                half = 0.5 * (ap * bz + az * bp + az * bn + an * bz)
                key = base + b
                conflict[key] = conflict.get(key, 0.0) + ap * bn + an * bp + half
                congruence[key] = congruence.get(key, 0.0) + ap * bp + az * bz + an * bn + half
    return congruence, conflict


def _network(
    window: Window,
    statements: int,
    cells: dict[str, dict[int, _Sums]],
    degree: list[float],
    names: list[str],
    aggregation: Aggregation,
    normalization: Normalization,
) -> WindowNetwork:
    size = len(names)
    congruences, conflicts = _pair_sums(cells, size)
    of_congruence, of_conflict = _LINEAR[aggregation]
    raw_weight = normalization is Normalization.NONE
    edges = []
    sum_conflict = sum_both = 0.0
    for key in sorted(conflicts):
        congruence, conflict = congruences[key], conflicts[key]
        both = congruence + conflict
        if both <= 0.0:
            continue
        sum_conflict += conflict
        sum_both += both
        a, b = divmod(key, size)
        # The aggregation as a linear form: ×1 and ×0 are exact, so no rounding is added.
        raw = congruence * of_congruence + conflict * of_conflict
        weight = raw if raw_weight else normalize(normalization, raw, degree[a], degree[b])
        edges.append(Edge(names[a], names[b], congruence, conflict, weight))
    polarization = sum_conflict / sum_both if sum_both > 0.0 else None
    return WindowNetwork(window, statements, polarization, edges)


_LINEAR = {
    Aggregation.CONGRUENCE: (1.0, 0.0),
    Aggregation.CONFLICT: (0.0, 1.0),
    Aggregation.SUBTRACT: (1.0, -1.0),
}
"""Each aggregation as (factor of congruence, factor of conflict)."""


def normalize(normalization: Normalization, x: float, da: float, db: float) -> float | None:
    """An edge weight over the actors' degrees; null where the denominator is 0."""
    if normalization is Normalization.NONE:
        return x
    if normalization is Normalization.AVERAGE:
        denominator = (da + db) / 2
    elif normalization is Normalization.COSINE:
        denominator = math.sqrt(da * db)
    else:
        denominator = da + db - x
    return x / denominator if denominator else None

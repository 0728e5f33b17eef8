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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import combinations

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


def kernel_value(kernel: Kernel, u: float) -> float:
    """K(u): every kernel is 0 outside [−1, 1] and symmetric about 0."""
    if abs(u) > 1:
        return 0.0
    if kernel is Kernel.TRIANGULAR:
        return 1.0 - abs(u)
    if kernel is Kernel.EPANECHNIKOV:
        return 0.75 * (1.0 - u * u)
    if kernel is Kernel.GAUSSIAN:
        return math.exp(-u * u / 2.0)
    return 1.0


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


_SIGN = {Stance.SUPPORT: 1, Stance.NEUTRAL: 0, Stance.OPPOSE: -1}


@dataclass(frozen=True, slots=True)
class Said:
    """One visible statement as a network sees it: the node it counts for (an actor, or
    a listed actor standing for its sub-organisations), its topic, time and stance."""

    node: str
    topic_id: str
    said_at: datetime
    statement_id: str
    stance: Stance


@dataclass(frozen=True, slots=True)
class Edge:
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


# Per (window index, topic, node): weight sums by stance sign (+1, 0, −1).
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
    ordered = sorted(said, key=lambda s: (s.said_at, s.statement_id, s.node))
    cells: list[dict[str, dict[str, _Sums]]] = [{} for _ in windows]
    degree: list[dict[str, float]] = [{} for _ in windows]
    counted: list[set[str]] = [set() for _ in windows]
    spacing = _Spacing.of(windows)
    for item in ordered:
        for k, w in spacing.weights(kernel, item.said_at):
            counted[k].add(item.statement_id)
            if w == 0.0:
                continue
            by_node = cells[k].setdefault(item.topic_id, {})
            sums = by_node.setdefault(item.node, [0.0, 0.0, 0.0])
            sums[1 - _SIGN[item.stance]] += w
            degree[k][item.node] = degree[k].get(item.node, 0.0) + w
    return [
        _network(windows[k], len(counted[k]), cells[k], degree[k], aggregation, normalization)
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
        if not windows:
            return cls(datetime.min, 0, 1, 0)
        origin = windows[0].start
        length = (windows[0].stop - origin) // _MICROSECOND
        step = (windows[1].start - origin) // _MICROSECOND if len(windows) > 1 else 1
        return cls(origin, length, max(step, 1), len(windows))

    def weights(self, kernel: Kernel, said_at: datetime) -> Iterable[tuple[int, float]]:
        """(window index, kernel weight) for each window holding ``said_at``."""
        if not self.count:
            return
        t = (said_at - self.origin) // _MICROSECOND
        if t < 0:
            return
        last = min(self.count - 1, t // self.step)
        first = max(0, -((self.length - t) // self.step))
        for k in range(first, last + 1):
            # u = (t − middle) / (length / 2), with the middle at start + length / 2.
            twice = 2 * (t - k * self.step) - self.length
            u = twice / self.length if self.length else 0.0
            yield k, kernel_value(kernel, u)


def _pair(a: _Sums, b: _Sums) -> tuple[float, float]:
    """(congruence, conflict) of two stance-weight sums: f = |s − t| / 2 is 1 between
    support and oppose, 1/2 between neutral and either side, 0 alike."""
    ap, az, an = a
    bp, bz, bn = b
    conflict = ap * bn + an * bp + 0.5 * (ap * bz + az * bp + az * bn + an * bz)
    return (ap + az + an) * (bp + bz + bn) - conflict, conflict


def _network(
    window: Window,
    statements: int,
    cells: dict[str, dict[str, _Sums]],
    degree: dict[str, float],
    aggregation: Aggregation,
    normalization: Normalization,
) -> WindowNetwork:
    totals: dict[tuple[str, str], list[float]] = {}
    for topic in sorted(cells):
        by_node = cells[topic]
        for a, b in combinations(sorted(by_node), 2):
            congruence, conflict = _pair(by_node[a], by_node[b])
            found = totals.get((a, b))
            if found is None:
                totals[(a, b)] = [congruence, conflict]
            else:
                found[0] += congruence
                found[1] += conflict
    edges = []
    sum_conflict = sum_both = 0.0
    for (a, b), (congruence, conflict) in sorted(totals.items()):
        if congruence + conflict <= 0.0:
            continue
        sum_conflict += conflict
        sum_both += congruence + conflict
        raw = _aggregate(aggregation, congruence, conflict)
        weight = normalize(normalization, raw, degree[a], degree[b])
        edges.append(Edge(a, b, congruence, conflict, weight))
    polarization = sum_conflict / sum_both if sum_both > 0.0 else None
    return WindowNetwork(window, statements, polarization, edges)


def _aggregate(aggregation: Aggregation, congruence: float, conflict: float) -> float:
    if aggregation is Aggregation.CONGRUENCE:
        return congruence
    if aggregation is Aggregation.CONFLICT:
        return conflict
    return congruence - conflict


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

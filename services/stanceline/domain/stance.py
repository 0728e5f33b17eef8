"""Stance labels and the rule that classifies a change between two points."""

from __future__ import annotations

from enum import StrEnum


class Stance(StrEnum):
    SUPPORT = "support"
    OPPOSE = "oppose"
    NEUTRAL = "neutral"


class Change(StrEnum):
    NONE = "none"
    SHIFT = "shift"
    FLIP = "flip"


def change_between(previous: Stance | None, current: Stance) -> Change:
    """A flip crosses from one side to the other; any other label change is a shift.

    The first point of a series has nothing to change from, so it is ``none``.
    """
    if previous is None or previous == current:
        return Change.NONE
    if Stance.NEUTRAL in (previous, current):
        return Change.SHIFT
    return Change.FLIP


def default_score(stance: Stance) -> float:
    """The score of a statement that gives none: the contract, the store and the
    rebuild's SQL all take it from here."""
    return {Stance.SUPPORT: 1.0, Stance.OPPOSE: -1.0, Stance.NEUTRAL: 0.0}[stance]

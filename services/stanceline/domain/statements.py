"""The life of one statement: recorded, corrected, retracted, in any order.

Each rule is commutative on purpose, so the state after a set of facts does
not depend on their arrival order: a correction always supersedes the
recorded body, the latest correction wins, the latest retraction is the
one kept (any retraction hides the statement), and of several identical
recordings the smallest event id is the one named. A second, different
``recorded`` for the same statement is rejected before it gets here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stanceline.domain.facts import (
    StatementBody,
    StatementCorrected,
    StatementFact,
    StatementRecorded,
    StatementRetracted,
    Version,
    version_of,
)


@dataclass(frozen=True, slots=True)
class StatementState:
    statement_id: str
    body: StatementBody | None = None
    """As it reads now: the latest correction, else as recorded."""
    recorded_by: str | None = None
    corrected_by: Version | None = None
    retracted_by: Version | None = None
    retraction_reason: str | None = None

    @property
    def effective(self) -> StatementBody | None:
        """On a timeline only once recorded, and never after a retraction."""
        if self.recorded_by is None or self.retracted_by is not None:
            return None
        return self.body


def apply_statement_fact(state: StatementState | None, fact: StatementFact) -> StatementState:
    current = state or StatementState(statement_id=fact.statement_id)
    version = version_of(fact)
    match fact:
        case StatementRecorded():
            if current.recorded_by is not None and current.recorded_by <= fact.event_id:
                return current
            body = current.body if current.corrected_by is not None else fact.body
            return replace(current, recorded_by=fact.event_id, body=body)
        case StatementCorrected():
            if current.corrected_by is not None and current.corrected_by >= version:
                return current
            return replace(current, body=fact.body, corrected_by=version)
        case StatementRetracted():
            if current.retracted_by is not None and current.retracted_by >= version:
                return current
            return replace(current, retracted_by=version, retraction_reason=fact.reason)


def rerecording_conflicts(first: StatementBody | None, again: StatementBody) -> bool:
    """A second ``recorded`` for a statement is the same recording when its body is equal:
    instants compare as instants (``Z`` or ``+00:00``, any offset) and omitted fields as
    their defaults, because bodies hold both normalised. Any other body is a conflict."""
    return first is not None and first != again

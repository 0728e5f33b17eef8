"""Statement rows ↔ the domain's ``StatementState``, so the store folds with the domain's rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from stanceline.contract import StatementData
from stanceline.domain.facts import StatementBody
from stanceline.domain.stance import Stance
from stanceline.domain.statements import StatementState
from stanceline.store.arrays import any_of, insert_rows
from stanceline.store.tables import events, statements
from stanceline.store.translate import body_of

BODY_FIELDS = tuple(StatementBody.__dataclass_fields__)
_ANY_ID = any_of("ids")


def body_from_row(row: Any) -> StatementBody | None:
    if row.said_at is None:
        return None
    values = {f: getattr(row, f) for f in BODY_FIELDS}
    values["stance"] = Stance(values["stance"])
    return StatementBody(**values)


def state_from_row(row: Any) -> StatementState:
    return StatementState(
        statement_id=row.statement_id,
        body=body_from_row(row),
        recorded_by=row.recorded_by,
        corrected_by=(row.corrected_time, row.corrected_by) if row.corrected_by else None,
        retracted_by=(row.retracted_time, row.retracted_by) if row.retracted_by else None,
        retraction_reason=row.retraction_reason,
    )


def row_from_state(state: StatementState) -> dict[str, Any]:
    body = state.body
    row: dict[str, Any] = {f: (getattr(body, f) if body else None) for f in BODY_FIELDS}
    if body is not None:
        row["stance"] = body.stance.value
    corrected = state.corrected_by or (None, None)
    retracted = state.retracted_by or (None, None)
    row.update(
        statement_id=state.statement_id,
        recorded_by=state.recorded_by,
        corrected_time=corrected[0],
        corrected_by=corrected[1],
        retracted_time=retracted[0],
        retracted_by=retracted[1],
        retraction_reason=state.retraction_reason,
    )
    return row


async def load_states(
    conn: AsyncConnection, statement_ids: Iterable[str]
) -> dict[str, StatementState]:
    """Current states; callers hold the statements' advisory locks."""
    ids = sorted(set(statement_ids))
    if not ids:
        return {}
    rows = await conn.execute(
        sa.select(statements).where(statements.c.statement_id == _ANY_ID), {"ids": ids}
    )
    return {row.statement_id: state_from_row(row) for row in rows}


async def recorded_bodies(
    conn: AsyncConnection, statement_ids: Iterable[str]
) -> dict[str, StatementBody]:
    """The body each statement was recorded with, read from the event store.

    Kept out of the projection on purpose: a re-recording is compared with
    the stored event itself, so the projection holds nothing that only Python
    can compute and a rebuild can be plain SQL.
    """
    ids = sorted(set(statement_ids))
    if not ids:
        return {}
    rows = await conn.execute(
        sa.select(statements.c.statement_id, events.c.data)
        .join(events, events.c.event_id == statements.c.recorded_by)
        .where(statements.c.statement_id == _ANY_ID),
        {"ids": ids},
    )
    return {row.statement_id: body_of(StatementData.model_validate(row.data)) for row in rows}


_SAVED_COLUMNS = tuple(c.name for c in statements.columns if c.name != "visible")
_UPSERT = "ON CONFLICT (statement_id) DO UPDATE SET " + ", ".join(
    f"{c} = EXCLUDED.{c}" for c in _SAVED_COLUMNS if c != "statement_id"
)


async def save_states(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        ordered = sorted(rows, key=lambda r: r["statement_id"])
        await insert_rows(conn, statements, ordered, columns=_SAVED_COLUMNS, tail=_UPSERT)

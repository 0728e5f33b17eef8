"""The changes feed and statement detail: what changed, and why."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from stanceline.cursors import encode_cursor
from stanceline.domain.facts import StatementCorrected, StatementRecorded, StatementRetracted
from stanceline.domain.statements import apply_statement_fact
from stanceline.readmodel import schemas, views
from stanceline.readmodel.etag import NOT_MODIFIED, conditional
from stanceline.readmodel.params import (
    AsOf,
    CursorText,
    Limit,
    decode_cursor,
    id_filter,
    identifier,
)
from stanceline.readmodel.problems import NotFound, documented
from stanceline.readmodel.routes.deps import IncludeDescendants, KnownAt, Reader
from stanceline.store import queries
from stanceline.store.known import rehydrate, statement_events
from stanceline.store.translate import fact_of

router = APIRouter(tags=["changes"])

IdFilter = Annotated[str | None, Query(description="Only this id.")]
KindFilter = Annotated[Literal["flip", "shift"] | None, Query(description="Only flips or shifts.")]


@router.get(
    "/changes", response_model=schemas.Changes, responses={**NOT_MODIFIED, **documented(400)}
)
async def changes(
    request: Request,
    conn: Reader,
    as_of: AsOf,
    known_at: KnownAt,
    cursor: CursorText = None,
    actor: IdFilter = None,
    topic: IdFilter = None,
    kind: KindFilter = None,
    include_descendants: IncludeDescendants = False,
    limit: Limit = 100,
) -> Response:
    """Change points in the order they became known. Poll with ``next_cursor``: entries
    appear only once every transaction that could still add an earlier one has ended, so a
    cursor never skips a change, even with several projectors committing out of order."""
    key = decode_cursor(cursor, int, int)
    rows = await queries.changes_page(
        conn,
        after=(key[0], key[1]) if key else None,
        actor_id=id_filter("actor", actor),
        topic_id=id_filter("topic", topic),
        kind=kind,
        rollup=include_descendants,
        as_of=as_of,
        known_at=known_at,
        limit=limit,
    )
    entries = [views.change_entry(r) for r in rows]
    last = (rows[-1].xact_id, rows[-1].id) if rows else (key or (0, 0))
    return conditional(request, schemas.Changes(changes=entries, next_cursor=encode_cursor(*last)))


@router.get(
    "/statements/{statement_id}",
    response_model=schemas.Statement,
    responses={**NOT_MODIFIED, **documented(400, 404)},
)
async def statement(
    request: Request, conn: Reader, statement_id: str, known_at: KnownAt
) -> Response:
    """The statement as it reads now (or as known then), with every event behind it."""
    identifier("statement", statement_id)
    stored = await statement_events(conn, statement_id, known_at)
    if not stored:
        raise NotFound(f"no statement with id {statement_id!r}")
    history = [
        schemas.StatementEvent(
            position=e.position,
            event_id=e.event_id,
            type=e.type,
            source=e.source,
            time=e.time,
            recorded_at=e.recorded_at,
            data=e.data,
        )
        for e in stored
    ]
    state = None
    for row in stored:
        fact = fact_of(rehydrate(row))
        if isinstance(fact, StatementRecorded | StatementCorrected | StatementRetracted):
            state = apply_statement_fact(state, fact)
    if state is None:
        raise NotFound(f"no statement with id {statement_id!r}")
    reads_now = None
    if (
        known_at is None
        and (row := await queries.statement_row(conn, statement_id))
        and (row.change is not None)
    ):
        reads_now = views.point_from_row(row)
    elif state.body is not None:
        reads_now = views.point_from_body(statement_id, state.body)
    body = schemas.Statement(
        statement_id=statement_id,
        recorded=state.recorded_by is not None,
        retracted=state.retracted_by is not None,
        retraction_reason=state.retraction_reason,
        corrected=state.corrected_by is not None,
        reads_now=reads_now,
        known_at=known_at,
        events=history,
    )
    return conditional(request, body)

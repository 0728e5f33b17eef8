"""Exports with provenance, streamed: statements and change points as CSV or Parquet.

The rows (``store/export_source.py``) and the file writer (``store/export_files.py``)
are the ones ``stanceline export`` uses. The response is streamed off a server-side
cursor: memory stays at one batch, and the first bytes leave before the last row is
read. The first batch is read before the status line goes out, so a bad moment for
the database is still a 503 problem, not a cut-off file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from stanceline.readmodel.params import AsOf, id_list, known_at_param, parse_moment, parse_start
from stanceline.readmodel.problems import documented
from stanceline.readmodel.routes.deps import IncludeDescendants
from stanceline.store.db import reading
from stanceline.store.export_files import MEDIA_TYPES, FileFormat, encode
from stanceline.store.export_source import export_rows
from stanceline.store.exports import ExportFilter, Kind
from stanceline.store.known import settled

router = APIRouter(tags=["analysts"])

_FILE = {"schema": {"type": "string", "format": "binary"}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The rows in (said_at, statement id) order, streamed.",
        "content": {MEDIA_TYPES["csv"].split(";")[0]: _FILE, MEDIA_TYPES["parquet"]: _FILE},
    },
    **documented(400, 503),
}

IdList = Annotated[str | None, Query(description="Comma-separated ids (at most 1000).")]
From = Annotated[
    str | None, Query(alias="from", description="said_at at or after (RFC 3339, or a date).")
]
To = Annotated[
    str | None,
    Query(alias="to", description="said_at at or before (RFC 3339, or a date: its end)."),
]
Format = Annotated[
    FileFormat | None,
    Query(description="csv (default) or parquet; else the Accept header decides."),
]
Accept = Annotated[str | None, Header(include_in_schema=False)]
KnownAtText = Annotated[str | None, Query(description="What stanceline had recorded then.")]


def _chosen(format: FileFormat | None, accept: str | None) -> FileFormat:
    if format is not None:
        return format
    wanted = {p.split(";")[0].strip().lower() for p in (accept or "").split(",")}
    return "parquet" if MEDIA_TYPES["parquet"] in wanted else "csv"


async def _export(
    request: Request,
    kind: Kind,
    file_format: FileFormat,
    selection: ExportFilter,
) -> StreamingResponse:
    stack = AsyncExitStack()
    try:
        conn = await stack.enter_async_context(reading(request.app.state.engine))
        if selection.known_at is not None:
            moment = await settled(conn, selection.known_at)
            selection = replace(selection, known_at=moment)
        rows = export_rows(conn, kind, selection)
        first = await anext(rows, None)
    except BaseException:
        await stack.aclose()
        raise

    async def batches() -> AsyncIterator[list[tuple[Any, ...]]]:
        if first is not None:
            yield first
            async for batch in rows:
                yield batch

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in encode(kind, file_format, batches()):
                yield chunk
        finally:
            await stack.aclose()

    extension = "csv" if file_format == "csv" else "parquet"
    return StreamingResponse(
        body(),
        media_type=MEDIA_TYPES[file_format],
        headers={
            "Content-Disposition": f'attachment; filename="{kind}.{extension}"',
            "Vary": "Accept",
        },
    )


def _selection(
    topics: str | None,
    actors: str | None,
    include_descendants: bool,
    start: str | None,
    stop: str | None,
    as_of: datetime | None,
    known_at: datetime | None,
) -> ExportFilter:
    return ExportFilter(
        topic_ids=id_list("topics", topics, most=1000),
        actor_ids=id_list("actors", actors, most=1000),
        include_descendants=include_descendants,
        start=parse_start("from", start),
        stop=parse_moment("to", stop),
        as_of=as_of,
        known_at=known_at,
    )


@router.get("/export/statements", response_class=StreamingResponse, responses=_RESPONSES)
async def export_statements(
    request: Request,
    as_of: AsOf,
    topics: IdList = None,
    actors: IdList = None,
    include_descendants: IncludeDescendants = False,
    start: From = None,
    stop: To = None,
    known_at: KnownAtText = None,
    format: Format = None,
    accept: Accept = None,
) -> StreamingResponse:
    """Every visible statement in scope (corrections applied, retractions removed), with
    the actor's name, the topic's title and the event that made the row what it is."""
    moment = await known_at_param(known_at)
    selection = _selection(topics, actors, include_descendants, start, stop, as_of, moment)
    return await _export(request, "statements", _chosen(format, accept), selection)


@router.get("/export/changes", response_class=StreamingResponse, responses=_RESPONSES)
async def export_changes(
    request: Request,
    as_of: AsOf,
    topics: IdList = None,
    actors: IdList = None,
    include_descendants: IncludeDescendants = False,
    start: From = None,
    stop: To = None,
    known_at: KnownAtText = None,
    format: Format = None,
    accept: Accept = None,
) -> StreamingResponse:
    """The shift and flip points of every series in scope as it stands, own and rolled up
    (``rollup``), each with the point before it; ``actors`` selects the series' actors."""
    moment = await known_at_param(known_at)
    selection = _selection(topics, actors, include_descendants, start, stop, as_of, moment)
    return await _export(request, "changes", _chosen(format, accept), selection)

"""``/v1/stream``: the changes feed pushed as Server-Sent Events, resumable by its cursor.

The stream is ``/v1/changes`` read in a loop, never a second feed: the same query
(``store/queries.py`` ``changes_page``), the same filters, and each message's ``id:`` the
same cursor ``/v1/changes?cursor=`` takes. An entry becomes visible only once no
transaction that could still add an earlier one is in flight, and the cursor advances only
past entries sent, so a client that reconnects with ``Last-Event-ID`` (or ``?cursor=``)
gets every change it missed and none it had. With ``STANCELINE_STREAM_MAX_SECONDS`` a
stream ends after that long, and its client reconnects where it was.

What it carries: the feed's entries, i.e. each change point (shift or flip) that appeared
(``status: added``) or went away (``withdrawn``); a retraction or correction shows as the
withdrawals and additions it causes. A statement that repeats the stance before it adds
no change point and so no message: carrying those too, with the same never-skip
guarantee, would take the writing transaction's id on every event and an index to read
it by, a write per event on the ingest path for what a client gets by re-reading the
series it shows when a change arrives (see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from stanceline.cursors import encode_cursor
from stanceline.readmodel import views
from stanceline.readmodel.params import CursorText, decode_cursor, id_filter
from stanceline.readmodel.problems import ApiError, BadRequest, InvalidParam, documented
from stanceline.readmodel.routes.deps import IncludeDescendants
from stanceline.readmodel.routes.feed import IdFilter, KindFilter
from stanceline.retry import with_backoff
from stanceline.settings import Settings
from stanceline.store import queries
from stanceline.store.db import ReadConnection, reading
from stanceline.store.errors import is_transient

log = logging.getLogger(__name__)
T = TypeVar("T")
router = APIRouter(tags=["changes"])

PAGE = 500
"""Feed entries read per query; a full page is followed at once by the next."""
EVENT = "change"

_SSE_EXAMPLE = (
    "retry: 3000\n\n"
    "id: WzEyMzQsNTZd\nevent: change\n"
    'data: {"status":"added","actor_id":"us","topic_id":"ukraine.us-weapons-in-russia",...}\n\n'
    ": ping\n\n"
)


class TooManyStreams(ApiError):
    status = 503
    kind = "too-many-streams"
    title = "Too many live streams"


class _Stream(EventSourceResponse):
    """The stream, holding one of the process's stream slots until it has ended."""

    def __init__(self, slots: _Slots, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slots.open -= 1


class _Slots:
    """Open streams in this process (one event loop: a counter needs no lock)."""

    def __init__(self) -> None:
        self.open = 0


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "An endless `text/event-stream`: a `retry:` first, then one "
            "`event: change` per feed entry (`id:` its cursor, `data:` the entry as "
            "/v1/changes gives it), and `:` comments as heartbeats.",
            "content": {
                "text/event-stream": {"schema": {"type": "string"}, "example": _SSE_EXAMPLE}
            },
        },
        **documented(400, 503),
    },
)
async def stream(
    request: Request,
    cursor: CursorText = None,
    actor: IdFilter = None,
    topic: IdFilter = None,
    kind: KindFilter = None,
    include_descendants: IncludeDescendants = False,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="The `id:` of the last message received; wins over `cursor`.",
        ),
    ] = None,
) -> EventSourceResponse:
    """Feed entries as they become known, filtered like ``/v1/changes``. Without a cursor
    the stream starts at the feed's current end; with ``cursor`` (a ``next_cursor`` of
    ``/v1/changes``, or a message's ``id:``) it starts after it. Browsers' EventSource
    resends the last ``id:`` as ``Last-Event-ID`` on reconnecting, and the stream resumes
    there: nothing missed, nothing repeated."""
    key = _resume_key(last_event_id) if last_event_id else None
    if key is None:
        key = decode_cursor(cursor, int, int)
    filters = {
        "actor_id": id_filter("actor", actor),
        "topic_id": id_filter("topic", topic),
        "kind": kind,
        "rollup": include_descendants,
    }
    settings: Settings = request.app.state.settings or Settings.model_construct()
    slots = _slots(request)
    if slots.open >= settings.max_streams:
        raise TooManyStreams(
            f"this server already holds {slots.open} live streams (STANCELINE_MAX_STREAMS); "
            "reconnect after Retry-After, or poll /v1/changes"
        )
    engine: AsyncEngine = request.app.state.engine
    after = (key[0], key[1]) if key else None
    slots.open += 1
    return _Stream(
        slots,
        _messages(engine, filters, after, settings),
        ping=settings.stream_ping_seconds,
        headers={"Cache-Control": "no-cache"},
    )


async def _messages(
    engine: AsyncEngine,
    filters: dict[str, Any],
    after: tuple[int, int] | None,
    settings: Settings,
) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(retry=settings.stream_retry_ms, comment="stanceline changes")
    clock = asyncio.get_running_loop().time
    lifetime = settings.stream_max_seconds
    end = None if lifetime is None else clock() + lifetime
    if after is None:
        after = await _read(engine, queries.feed_end)
    while end is None or clock() < end:
        page = partial(
            queries.changes_page, after=after, as_of=None, known_at=None, limit=PAGE, **filters
        )
        rows = await _read(engine, page)
        for row in rows:
            after = (row.xact_id, row.id)
            entry = views.change_entry(row)
            yield ServerSentEvent(
                data=entry.model_dump_json(), event=EVENT, id=encode_cursor(*after)
            )
        if len(rows) < PAGE:
            pause = settings.stream_poll_seconds
            await asyncio.sleep(pause if end is None else max(0.0, min(pause, end - clock())))


async def _read(engine: AsyncEngine, query: Callable[[ReadConnection], Awaitable[T]]) -> T:
    """One read in its own snapshot; while Postgres is away the stream waits for it (the
    heartbeats go on), since an EventSource gives up for good on a 503 when reconnecting."""

    async def attempt() -> T:
        async with reading(engine) as conn:
            return await query(conn)

    return await with_backoff(
        attempt,
        on=Exception,
        transient=is_transient,
        what="/v1/stream: Postgres unavailable",
        log=log,
    )


def _resume_key(value: str) -> tuple[Any, ...] | None:
    try:
        return decode_cursor(value, int, int)
    except BadRequest:
        reason = "not an id this stream sent"
        raise BadRequest(
            f"Last-Event-ID: {reason}", [InvalidParam(name="Last-Event-ID", reason=reason)]
        ) from None


def _slots(request: Request) -> _Slots:
    state = request.app.state
    if getattr(state, "streams", None) is None:
        state.streams = _Slots()
    slots: _Slots = state.streams
    return slots

"""Operator status and dead letters over HTTP, behind a bearer token.

Mounted only when ``STANCELINE_ADMIN_TOKEN`` is set: otherwise these paths are
unknown (404, like any other) and absent from the OpenAPI document. Read-only
on purpose: redrive and rebuild change data, and stay on the CLI, where an
operator runs them deliberately.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, SecretStr
from redis.exceptions import RedisError

from stanceline.cursors import encode_cursor
from stanceline.ops.status import Status, status
from stanceline.readmodel.params import (
    CursorText,
    Limit,
    decode_cursor,
    parse_start,
)
from stanceline.readmodel.problems import NotFound, Unauthorized, Unavailable, documented
from stanceline.readmodel.routes.deps import Reader
from stanceline.redis_client import RedisClient
from stanceline.store.dead_letters import (
    DeadLetter,
    DeadLetterDetail,
    Selection,
    list_dead_letters,
    show,
)
from stanceline.store.errors import is_transient

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="`Authorization: Bearer <STANCELINE_ADMIN_TOKEN>`",
)


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    token: SecretStr = request.app.state.admin_token
    if credentials is None:
        raise Unauthorized(
            "send Authorization: Bearer <STANCELINE_ADMIN_TOKEN>", invalid_token=False
        )
    given = credentials.credentials.encode()
    if not hmac.compare_digest(given, token.get_secret_value().encode()):
        raise Unauthorized("the bearer token is not the admin token", invalid_token=True)


log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=documented(401),
)

Reason = Annotated[
    str | None,
    Query(
        max_length=128,
        pattern=r"^[A-Za-z0-9_.\-]+$",
        description="The field a rejection names (`data.said_at`, `delivery`), a dotted "
        "prefix of it (`data`), or `entry` for entries that were not an event at all.",
    ),
]


async def since_param(
    since: Annotated[
        str | None,
        Query(
            description="Only dead letters last seen at or after this time (RFC 3339 with "
            "offset, or YYYY-MM-DD for the start of that day, UTC).",
            examples=["2024-06-01T00:00:00Z"],
        ),
    ] = None,
) -> datetime | None:
    # The API's own parser, not pydantic's lax datetime: that took `since=0.5` as 1970.
    return parse_start("since", since)


Since = Annotated[datetime | None, Depends(since_param)]


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetter]
    total: int = Field(description="Dead letters matching the filters, on all pages.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


@router.get("/status", response_model=Status, responses=documented(503))
async def admin_status(request: Request) -> Status:
    """The same document as `stanceline status --json`: stream, groups and lag, dead
    letters by reason, the event store and the projection's version."""
    client: RedisClient | None = request.app.state.redis
    if client is None:
        raise Unavailable("redis: this process has no STANCELINE_REDIS_URL")
    settings = request.app.state.settings
    try:
        return await status(
            request.app.state.engine,
            client,
            settings.stream,
            group=settings.group,
            shards=settings.stream_shards,
        )
    except RedisError as exc:
        # In words: the driver's text can name hosts and users.
        log.warning("admin status: Redis does not answer (%s)", type(exc).__name__)
        raise Unavailable("Redis is unreachable; try again shortly") from exc
    except Exception as exc:
        if is_transient(exc):
            log.warning("admin status: the database does not answer (%s)", type(exc).__name__)
            raise Unavailable("the database is unreachable; try again shortly") from exc
        raise


@router.get("/dead-letters", response_model=DeadLetterList, responses=documented(400))
async def dead_letters(
    conn: Reader,
    since: Since,
    reason: Reason = None,
    cursor: CursorText = None,
    limit: Limit = 100,
) -> DeadLetterList:
    """Dead letters, oldest first, without their raw bytes (see the single-item route)."""
    key = decode_cursor(cursor, int)
    page = await list_dead_letters(
        conn,
        Selection(reason=reason, since=since),
        after=key[0] if key else 0,
        limit=limit,
    )
    return DeadLetterList(
        dead_letters=page.dead_letters,
        total=page.total,
        next_cursor=encode_cursor(page.next_after) if page.next_after is not None else None,
    )


@router.get(
    "/dead-letters/{dead_letter_id}",
    response_model=DeadLetterDetail,
    responses=documented(400, 404),
)
async def dead_letter(
    conn: Reader, dead_letter_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> DeadLetterDetail:
    """One dead letter with its raw bytes (as text when they are UTF-8, and base64)."""
    found = await show(conn, dead_letter_id)
    if found is None:
        raise NotFound(f"no dead letter with id {dead_letter_id}")
    return found

"""Query parameters that need more than a type: times and cursors."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import Depends, Query

from stanceline.readmodel.problems import BadRequest, InvalidParam


def parse_moment(name: str, value: str | None) -> datetime | None:
    """RFC 3339 with an offset, or a plain date meaning the whole of that day (UTC)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day + timedelta(days=1), time(), UTC) - timedelta(
                microseconds=1
            )
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        reason = "expected an RFC 3339 time with offset (2024-06-01T00:00:00Z) or a date"
        raise BadRequest(f"{name}: {reason}", [InvalidParam(name=name, reason=reason)])
    return moment


def as_of_param(
    as_of: Annotated[
        str | None,
        Query(
            description="Only statements said at or before this time "
            "(RFC 3339 with offset, or YYYY-MM-DD for the end of that day, UTC).",
            examples=["2024-06-01", "2024-06-01T00:00:00Z"],
        ),
    ] = None,
) -> datetime | None:
    return parse_moment("as_of", as_of)


AsOf = Annotated[datetime | None, Depends(as_of_param)]


def encode_cursor(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        reason = "not a cursor returned by this API"
        raise BadRequest(
            f"cursor: {reason}", [InvalidParam(name="cursor", reason=reason)]
        ) from None


def cursor_param(
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> str | None:
    return decode_cursor(cursor)


Cursor = Annotated[str | None, Depends(cursor_param)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]

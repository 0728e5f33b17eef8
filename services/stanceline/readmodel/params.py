"""Query and path parameters that need more than a type: times, ids and cursors.

Every failure here is a 400 (or, for an id that cannot exist, a 404) problem,
never a 500: values are checked against what Postgres can hold before any
query runs.
"""

from __future__ import annotations

import binascii
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import TypeAdapter, ValidationError

from stanceline.cursors import cursor_key
from stanceline.readmodel.problems import BadRequest, InvalidParam, NotFound

_IDENTIFIER = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_MOMENT_HELP = "RFC 3339 with offset, or YYYY-MM-DD for the end of that day (UTC)"


def _bad(name: str, reason: str) -> BadRequest:
    return BadRequest(f"{name}: {reason}", [InvalidParam(name=name, reason=reason)])


def parse_moment(name: str, value: str | None) -> datetime | None:
    """RFC 3339 with an offset, or a plain date meaning the whole of that day (UTC)."""
    if value is None:
        return None
    reason = "expected an RFC 3339 time with offset (2024-06-01T00:00:00Z) or a date"
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max, UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            raise _bad(name, reason)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _bad(name, reason) from None


def parse_start(name: str, value: str | None) -> datetime | None:
    """Like ``parse_moment``, but a plain date means the start of that day (UTC): the
    lower bound of a range."""
    if value is not None and len(value) == 10:
        try:
            return datetime.combine(date.fromisoformat(value), time.min, UTC)
        except ValueError:
            raise _bad(name, "expected an RFC 3339 time with offset or a date") from None
    return parse_moment(name, value)


_DURATION = TypeAdapter(timedelta)
_CALENDAR = re.compile(r"P[^T]*[YM]")
DURATION_HELP = (
    "An ISO 8601 duration of fixed length: weeks, days, hours, minutes, seconds"
    " (P7D, P1W, PT12H, P1DT6H). Years and months are refused: their length varies."
)


def parse_duration(name: str, value: str | None) -> timedelta | None:
    """A positive ISO 8601 duration. Calendar units (P1M, P1Y) have no fixed length, so
    they are refused rather than guessed (pydantic would take a month as 30 days)."""
    if value is None:
        return None
    reason = "expected a positive ISO 8601 duration such as P7D, P1W or PT12H"
    if not value.startswith("P"):
        raise _bad(name, reason)
    if _CALENDAR.match(value):
        raise _bad(name, "years and months have no fixed length: use days or weeks (P30D)")
    try:
        duration = _DURATION.validate_python(value)
    except ValidationError:
        raise _bad(name, reason) from None
    if duration <= timedelta(0):
        raise _bad(name, reason)
    return duration


AsOfText = Annotated[
    str | None,
    Query(
        description=f"Only statements said at or before this time ({_MOMENT_HELP}).",
        examples=["2024-06-01"],
    ),
]
"""``as_of`` as sent; ``parse_moment("as_of", ...)`` reads it. A route declares it itself
(rather than through ``AsOf``) where a dependency's per-request cost shows."""
KnownAtText = Annotated[
    str | None,
    Query(
        description="Answer with what stanceline had recorded at that moment: events "
        f"recorded later are ignored, retractions and corrections too ({_MOMENT_HELP}).",
        examples=["2024-06-01T12:00:00Z"],
    ),
]
"""``known_at`` as sent, like ``AsOfText``."""


async def as_of_param(as_of: AsOfText = None) -> datetime | None:
    return parse_moment("as_of", as_of)


async def known_at_param(known_at: KnownAtText = None) -> datetime | None:
    return parse_moment("known_at", known_at)


AsOf = Annotated[datetime | None, Depends(as_of_param)]
KnownAt = Annotated[datetime | None, Depends(known_at_param)]


def identifier(kind: str, value: str) -> str:
    """An id outside the contract's charset names nothing: 404, like any unknown id."""
    if not _IDENTIFIER.fullmatch(value):
        raise NotFound(f"no {kind} with id {value[:80]!r}")
    return value


def id_filter(name: str, value: str | None) -> str | None:
    """A query filter naming one id: one outside the contract's charset is a bad parameter
    (400), not a missing resource, since the filtered list itself exists."""
    if value is not None and not _IDENTIFIER.fullmatch(value):
        raise _bad(name, "expected an id: 1 to 128 letters, digits and . _ : -")
    return value


def id_list(name: str, value: str | None, *, most: int = 100) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if not _IDENTIFIER.fullmatch(v)]
    if bad or not items or len(items) > most:
        raise _bad(name, f"expected 1 to {most} comma-separated ids")
    return sorted(set(items))


def decode_cursor(cursor: str | None, *types: type) -> tuple[Any, ...] | None:
    """The key inside a cursor, checked against the types this list sorts by."""
    if cursor is None:
        return None
    try:
        key = cursor_key(cursor)
        if not isinstance(key, list) or len(key) != len(types):
            raise ValueError
        values = tuple(_typed(v, t) for v, t in zip(key, types, strict=True))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise _bad("cursor", "not a cursor returned by this endpoint") from None
    return values


def _typed(value: Any, kind: type) -> Any:
    if kind is datetime:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError
        return moment
    if kind is str and isinstance(value, str) and _IDENTIFIER.fullmatch(value):
        return value
    if kind is int and isinstance(value, int) and 0 <= value < 2**63:
        return value
    raise ValueError


CursorText = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]

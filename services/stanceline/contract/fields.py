"""Field types shared by the v1 wire models.

Every constraint here has a twin in the JSON Schemas under `contracts/schemas/`;
the patterns are exported so a test can check that the twins agree.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    Strict,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

IDENTIFIER_PATTERN = r"^[A-Za-z0-9._:-]+$"

# RFC 3339 `date-time`, ASCII digits only, seconds 00-59 (Python has no leap
# second). Stricter than pydantic's own parser, which also takes unix
# timestamps, a space for `T`, and times without seconds.
RFC3339_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)

HTTP_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+([/?#]\S*)?$"

_RFC3339 = re.compile(RFC3339_PATTERN)


def _require_rfc3339_text(value: Any) -> Any:
    """Let only RFC 3339 text (or an aware datetime built in Python) through."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return value
    raise PydanticCustomError(
        "rfc3339",
        "must be an RFC 3339 date-time with a UTC offset, e.g. 2024-05-30T12:00:00Z",
    )


_FIRST_INSTANT = datetime.min.replace(tzinfo=UTC)
_LAST_INSTANT = datetime.max.replace(tzinfo=UTC)


def _inside_the_calendar(value: datetime) -> datetime:
    """Refuse instants that Python and the store cannot hold as what they are.

    RFC 3339 allows ``0001-01-01T00:00:00+00:01``, whose UTC instant falls in
    year 0; and asyncpg writes the first and last microseconds of Python's
    calendar as -infinity/infinity and reads them back naive. Such an event
    would be stored wrongly or fail the store, so it is refused at the field.
    """
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        instant = None
    if instant is None or not _FIRST_INSTANT < instant < _LAST_INSTANT:
        raise PydanticCustomError(
            "calendar",
            "must lie after 0001-01-01T00:00:00Z and before 9999-12-31T23:59:59.999999Z",
        )
    return value


Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN)
]
"""A statement, actor or topic id: 1–128 of letters, digits and `.` `_` `:` `-`."""

Timestamp = Annotated[
    AwareDatetime, BeforeValidator(_require_rfc3339_text), AfterValidator(_inside_the_calendar)
]
"""An instant with its offset, as RFC 3339 text on the wire."""

HttpUrlText = Annotated[str, StringConstraints(pattern=HTTP_URL_PATTERN)]
"""An absolute http(s) URL, kept as the publisher wrote it."""

# Strict: a JSON string "0.5" or `true` is not a number here, as in the schema.
Score = Annotated[float, Strict(), Field(ge=-1.0, le=1.0, allow_inf_nan=False)]
Confidence = Annotated[float, Strict(), Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Quote = Annotated[str, StringConstraints(max_length=4000)]

"""Fuzzing the running projector with hostile stream entries.

One real projector consumes a unique stream for the whole test, while
hypothesis publishes batches of entries with plain ``XADD``: entries that are
not JSON, not UTF-8, nested too deeply, too large, or valid v1 statements
broken in exactly one place, entries without an ``event`` field, and entries
with extra fields, all interleaved with valid statements. After each batch:
every hostile entry is in ``dead_letters`` with a reason and its raw bytes,
every valid one is in ``events``, none is in both, nothing is left pending,
and the projector is still up and ready.

Entries whose fate the contract leaves open (a valid event with extra stream
fields) must end in exactly one of the two tables.

Each entry's event and statement ids carry a placeholder that is replaced by
a fresh token when the entry is published (same length, so sizes near the
64 KiB limit stay exact): examples replayed while shrinking never collide
with entries from earlier examples.
"""

from __future__ import annotations

import asyncio
import json
import string
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

import hypothesis
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from faststream.redis.parser import BinaryMessageFormatV1
from hypothesis import HealthCheck
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.contract import EVENT_TYPES, MAX_ENTRY_BYTES, STATEMENT_RECORDED
from stanceline.projector.consumer import Projector
from stanceline.settings import Settings
from support.events import statement
from support.running import eventually, projector_running

Outcome = Literal["valid", "hostile", "either"]
RawRule = Literal["event", "faststream", "non-empty", "any"]
"""What ``dead_letters.raw`` must hold: the ``event`` field's exact bytes, the
``__data__`` field's exact bytes, something, or anything (FastStream's binary
framing is unwrapped before the contract sees the payload)."""

PLACEHOLDER = "QZTOKENQZQZQ"
"""Replaced by a fresh 12-character token per entry when it is published."""

ID_ALPHABET = string.ascii_letters + string.digits + "._:-"
EVENT_FIELD = b"event"
FASTSTREAM_FIELD = b"__data__"
ENVELOPE_FIELDS = frozenset({"specversion", "id", "source", "type", "time", "datacontenttype"})
DATA_FIELDS = frozenset(
    {
        "statement_id",
        "actor_id",
        "topic_id",
        "stance",
        "said_at",
        "score",
        "confidence",
        "speaker",
        "quote",
        "source_url",
        "published_at",
        "speech_act",
        "certainty",
    }
)
REQUIRED_PATHS: tuple[tuple[str, ...], ...] = (
    ("specversion",),
    ("id",),
    ("source",),
    ("type",),
    ("time",),
    ("data",),
    ("data", "statement_id"),
    ("data", "actor_id"),
    ("data", "topic_id"),
    ("data", "stance"),
    ("data", "said_at"),
    ("data", "speaker", "name"),
)
STRING_PATHS: tuple[tuple[str, ...], ...] = (
    ("id",),
    ("source",),
    ("data", "statement_id"),
    ("data", "actor_id"),
    ("data", "quote"),
    ("data", "speaker", "name"),
    ("data", "speaker", "role"),
)
TIMESTAMP_PATHS: tuple[tuple[str, ...], ...] = (
    ("time",),
    ("data", "said_at"),
    ("data", "published_at"),
)
LAST_DAY = datetime(9999, 12, 30, tzinfo=UTC)
FAR_AHEAD_HOURS = (LAST_DAY - datetime(2100, 1, 1, tzinfo=UTC)) / timedelta(hours=1)
"""How far ahead of now a refused ``said_at`` may lie and still be in the calendar."""


class Entry:
    """One stream entry to publish, and where it must end up."""

    __slots__ = ("event_id", "fields", "label", "outcome", "raw_rule")

    def __init__(
        self,
        outcome: Outcome,
        label: str,
        fields: dict[bytes, bytes],
        raw_rule: RawRule = "event",
        event_id: str | None = None,
    ) -> None:
        self.outcome = outcome
        self.label = label
        self.fields = fields
        self.raw_rule = raw_rule
        self.event_id = event_id

    def published(self, token: str) -> Entry:
        """The entry with its placeholder replaced by ``token``."""
        old, new = PLACEHOLDER.encode(), token.encode()
        return Entry(
            self.outcome,
            self.label,
            {key: value.replace(old, new) for key, value in self.fields.items()},
            self.raw_rule,
            self.event_id.replace(PLACEHOLDER, token) if self.event_id is not None else None,
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{key!r}: {_clipped(value)}" for key, value in self.fields.items())
        return f"Entry({self.outcome}, {self.label!r}, {{{fields}}})"


def _clipped(value: bytes, limit: int = 300) -> str:
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} bytes)"


def dumps(document: Any, *, ascii_only: bool = True) -> bytes:
    return json.dumps(document, ensure_ascii=ascii_only).encode()


def rfc3339(moment: datetime, zulu: bool) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if zulu and text.endswith("+00:00") else text


def set_at(document: dict[str, Any], path: Sequence[str], value: Any) -> None:
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def delete_at(document: dict[str, Any], path: Sequence[str]) -> None:
    target = document
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]


def with_speaker_if_needed(document: dict[str, Any], path: Sequence[str]) -> None:
    if tuple(path[:2]) == ("data", "speaker") and len(path) == 3:
        document["data"]["speaker"] = {"name": "A speaker", "role": "spokesperson"}


def padded(document: dict[str, Any], size: int, *, ascii_only: bool = True) -> bytes:
    """The document with an unknown field that brings it to exactly ``size`` bytes."""
    document = {**document, "pad": ""}
    room = size - len(dumps(document, ascii_only=ascii_only))
    document["pad"] = "x" * room
    raw = dumps(document, ascii_only=ascii_only)
    assert len(raw) == size
    return raw


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


# --- building blocks (built once: strategies built inside a draw are re-validated) ---

SAFE_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
TEXT = st.text(SAFE_CHARS, max_size=24)
NON_EMPTY_TEXT = st.text(SAFE_CHARS, min_size=1, max_size=24)
ACTORS = st.sampled_from(["us", "us.white-house", "ru", "ua:mod", "org_un"])
TOPICS = st.sampled_from(["ukraine.long-range", "topic:x", "t_1"])
STANCES = ("support", "oppose", "neutral")
TINIEST = 5e-324
SCORES = {
    "support": st.floats(TINIEST, 1),
    "oppose": st.floats(-1, -TINIEST),
    "neutral": st.sampled_from([0, 0.0, -0.0]),
}
CONTRADICTING_SCORES = {
    "support": st.floats(-1, 0),
    "oppose": st.floats(0, 1),
    "neutral": st.floats(TINIEST, 1) | st.floats(-1, -TINIEST),
}
OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
INSTANTS = st.builds(
    rfc3339,
    st.datetimes(datetime(1900, 1, 1), datetime(2024, 12, 31), timezones=OFFSETS),
    st.booleans(),
)


def _before_year_one(minute_of_day: int, extra: int) -> str:
    """Local time on 0001-01-01 whose eastern offset puts the UTC instant in year 0."""
    offset = min(minute_of_day + 1 + extra, 23 * 60 + 59)
    return (
        f"0001-01-01T{minute_of_day // 60:02d}:{minute_of_day % 60:02d}:00"
        f"+{offset // 60:02d}:{offset % 60:02d}"
    )


def _after_year_9999(minute_of_day: int, extra: int) -> str:
    """Local time on 9999-12-31 whose western offset puts the UTC instant in year 10000."""
    offset = min(24 * 60 - minute_of_day + extra, 23 * 60 + 59)
    return (
        f"9999-12-31T{minute_of_day // 60:02d}:{minute_of_day % 60:02d}:59"
        f"-{offset // 60:02d}:{offset % 60:02d}"
    )


BEFORE_YEAR_ONE = st.builds(_before_year_one, st.integers(0, 23 * 60 + 58), st.integers(0, 60))
AFTER_YEAR_9999 = st.builds(_after_year_9999, st.integers(1, 23 * 60 + 59), st.integers(0, 60))
CALENDAR_EDGES = st.sampled_from(
    [("time",), ("data", "said_at"), ("data", "published_at")]
).flatmap(
    lambda path: st.tuples(
        st.just(path),
        st.one_of(
            BEFORE_YEAR_ONE,
            st.just("0001-01-01T00:00:00Z"),
            # After the calendar, said_at is refused by the 24-hour rule (a proper reason).
            *(
                []
                if path == ("data", "said_at")
                else [AFTER_YEAR_9999, st.just("9999-12-31T23:59:59.999999Z")]
            ),
        ),
    )
)
"""RFC 3339 text at or beyond the ends of the calendar: a UTC instant outside years
1-9999, or exactly its first or last microsecond (which asyncpg stores as infinity)."""
URLS = st.sampled_from(
    ["https://example.org/statement?id=1#q", "http://EXAMPLE.org", "HTTPS://x.y/z"]
)
BAD_URLS = st.sampled_from(
    [
        "",
        "ftp://example.org/x",
        "example.org/x",
        "http://",
        "https:// spaced.example.org",
        "//example.org/x",
        "javascript:alert(1)",
        "http://exa mple.org",
    ]
)
SPEECH_ACTS = ("assert", "deny", "investigate", "question", "decline_comment", "act")
CERTAINTIES = ("certain", "probable", "possible", "uncommitted")
QUOTES = st.one_of(
    st.text(SAFE_CHARS, max_size=60),
    st.tuples(st.sampled_from("qé中😀"), st.integers(3990, 4000)).map(lambda cn: cn[0] * cn[1]),
)

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
# JSON values of the other kinds than the one a field wants.
NOT_STRINGS_OR_NULL = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(JSON_LEAVES, max_size=3),
    st.dictionaries(TEXT, JSON_LEAVES, max_size=3),
)
NOT_STRINGS = st.none() | NOT_STRINGS_OR_NULL
NOT_NUMBERS_OR_NULL = st.one_of(
    st.booleans(),
    st.sampled_from(["0.5", "-1", "1e0", ""]),
    TEXT,
    st.lists(JSON_LEAVES, max_size=3),
    st.dictionaries(TEXT, JSON_LEAVES, max_size=3),
)
NOT_OBJECTS_OR_NULL = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    st.lists(JSON_LEAVES, max_size=3),
)
NOT_OBJECTS = st.none() | NOT_OBJECTS_OR_NULL
WRONG_TYPES: tuple[tuple[tuple[str, ...], st.SearchStrategy[Any]], ...] = (
    *((path, NOT_STRINGS) for path in REQUIRED_PATHS if path != ("data",)),
    (("data",), NOT_OBJECTS),
    (("data", "score"), NOT_NUMBERS_OR_NULL),
    (("data", "confidence"), NOT_NUMBERS_OR_NULL),
    (("data", "speaker"), NOT_OBJECTS_OR_NULL),
    (("data", "speaker", "role"), NOT_STRINGS_OR_NULL),
    (("data", "quote"), NOT_STRINGS_OR_NULL),
    (("data", "source_url"), NOT_STRINGS_OR_NULL),
    (("data", "published_at"), NOT_STRINGS_OR_NULL),
    (("data", "speech_act"), NOT_STRINGS_OR_NULL),
    (("data", "certainty"), NOT_STRINGS_OR_NULL),
    (("datacontenttype",), NOT_STRINGS_OR_NULL),
)
BAD_IDENTIFIERS = st.one_of(
    st.just(""),
    st.text(ID_ALPHABET, min_size=129, max_size=300),
    st.builds(
        lambda head, odd, tail: head + odd + tail,
        st.text(ID_ALPHABET, max_size=20),
        st.characters(exclude_characters=ID_ALPHABET),
        st.text(ID_ALPHABET, max_size=20),
    ),
)
BAD_EVENT_IDS = st.just("") | st.text(SAFE_CHARS, min_size=129, max_size=300)
_PARTS = (
    ((1, 9999), (1, 9999)),
    ((1, 12), (13, 99)),
    ((1, 28), (32, 99)),
    ((0, 23), (24, 99)),
    ((0, 59), (0, 59)),
    ((0, 59), (0, 59)),
)
"""(in range, out of range) for each component of a timestamp, year to second."""
BAD_DATES = st.one_of(
    st.sampled_from(
        [
            "0000-01-01T00:00:00Z",
            "99999-01-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
            "-0001-01-01T00:00:00Z",
            "+002024-01-01T00:00:00Z",
            "2024-13-45T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T23:60:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00+0000",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01",
            "2024-W01-1T00:00:00Z",
            "１７００-01-01T00:00:00Z",
            "1700000000",
            "now",
            "",
        ]
    ),
    # Every component in range except one: the month, the day or the hour.
    *(
        st.builds(
            "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format,
            *(st.integers(*(bad if n == wrong else good)) for n, (good, bad) in enumerate(_PARTS)),
        )
        for wrong in (1, 2, 3)
    ),
)
BAD_ENUMS = st.one_of(
    st.tuples(
        st.just(("data", "stance")),
        st.sampled_from(["Support", "SUPPORT", "against", "", "supports", "neutral ", "null"]),
    ),
    st.tuples(st.just(("data", "speech_act")), st.sampled_from(["Assert", "lie", "", "acts"])),
    st.tuples(st.just(("data", "certainty")), st.sampled_from(["sure", "", "Certain"])),
    st.tuples(
        st.just(("datacontenttype",)),
        st.sampled_from(["text/plain", "application/cloudevents+json", "application/json; x", ""]),
    ),
)
UNKNOWN_TYPES = st.one_of(
    st.sampled_from(
        [
            "stanceline.statement.recorded.v2",
            "stanceline.statement.recorded",
            "STANCELINE.STATEMENT.RECORDED.V1",
            " stanceline.statement.recorded.v1",
            "stanceline.unknown.v1",
            "",
        ]
    ),
    TEXT.filter(lambda t: t not in EVENT_TYPES),
)
UNKNOWN_SPECVERSIONS = st.one_of(
    st.sampled_from(["0.3", "1", "1.0.0", "1.1", " 1.0", "", "2.0", 1.0, 1]),
    TEXT.filter(lambda v: v != "1.0"),
)
NON_FINITE_LITERALS = st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"])
INVALID_UTF8 = st.sampled_from(
    [
        b"\xff",
        b"\xfe",
        b"\x80",
        b"\xc3",
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xe2\x82",
    ]
)
STREAM_KEYS = st.binary(max_size=12).filter(lambda k: k not in (EVENT_FIELD, FASTSTREAM_FIELD))
EXTRA_STREAM_FIELDS = st.dictionaries(
    STREAM_KEYS | st.sampled_from([b"Event", b"event ", b"__data__", b"type", b"id"]),
    st.binary(max_size=64),
    min_size=1,
    max_size=3,
).filter(lambda fields: EVENT_FIELD not in fields)


def _unknown_fields(known: frozenset[str]) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.one_of(
        TEXT,
        st.sampled_from(["__class__", "model_dump", "effective_score", "__dict__", "ext.a"]),
    ).filter(lambda k: k not in known and k != "data")
    return st.dictionaries(keys, JSON_VALUES, max_size=2)


UNKNOWN_ENVELOPE_FIELDS = _unknown_fields(ENVELOPE_FIELDS)
UNKNOWN_DATA_FIELDS = _unknown_fields(DATA_FIELDS)
OPTIONAL_DATA = {
    "confidence": st.floats(0, 1),
    "speaker": st.fixed_dictionaries({"name": TEXT}, optional={"role": TEXT | st.none()}),
    "quote": QUOTES,
    "source_url": URLS,
    "published_at": INSTANTS,
    "speech_act": st.sampled_from(SPEECH_ACTS),
    "certainty": st.sampled_from(CERTAINTIES),
}


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    """A valid ``stanceline.statement.recorded.v1`` document (ids hold the placeholder)."""
    stance = draw(st.sampled_from(STANCES))
    data = draw(
        st.fixed_dictionaries(
            {
                "statement_id": st.just(f"s-{PLACEHOLDER}"),
                "actor_id": ACTORS,
                "topic_id": TOPICS,
                "stance": st.just(stance),
                "said_at": INSTANTS,
            },
            optional={"score": SCORES[stance], **OPTIONAL_DATA},
        )
    )
    data.update(draw(UNKNOWN_DATA_FIELDS))
    document = draw(
        st.fixed_dictionaries(
            {
                "specversion": st.just("1.0"),
                # Only the length of an event id is constrained: any other text is fine.
                "id": st.text(SAFE_CHARS, max_size=40).map(lambda s: f"fz-{PLACEHOLDER}{s}"),
                "source": NON_EMPTY_TEXT,
                "type": st.just(STATEMENT_RECORDED),
                "time": INSTANTS,
            },
            optional={"datacontenttype": st.sampled_from(["application/json", None])},
        )
    )
    document.update(draw(UNKNOWN_ENVELOPE_FIELDS))
    document["data"] = data
    return document


STATEMENTS = statements()


# --- valid entries -----------------------------------------------------------------


def _valid(label: str, document: dict[str, Any], raw: bytes) -> Entry:
    return Entry("valid", label, {EVENT_FIELD: raw}, "event", document["id"])


@st.composite
def valid_entries(draw: st.DrawFn) -> Entry:
    document = draw(STATEMENTS)
    ascii_only = draw(st.booleans())
    kind = draw(st.sampled_from(["plain", "plain", "at the size limit", "said_at just ahead"]))
    if kind == "at the size limit":
        size = MAX_ENTRY_BYTES - draw(st.integers(0, 16))
        return _valid(kind, document, padded(document, size, ascii_only=ascii_only))
    if kind == "said_at just ahead":
        ahead = timedelta(minutes=draw(st.integers(1, 23 * 60)))
        moment = (datetime.now(UTC) + ahead).astimezone(draw(OFFSETS))
        document["data"]["said_at"] = rfc3339(moment, zulu=False)
    return _valid(kind, document, dumps(document, ascii_only=ascii_only))


@st.composite
def either_entries(draw: st.DrawFn) -> Entry:
    """A valid event with extra stream fields: the contract names one field,
    ``event``, and says nothing of others, so it must end in exactly one table."""
    document = draw(STATEMENTS)
    fields = {EVENT_FIELD: dumps(document), **draw(EXTRA_STREAM_FIELDS)}
    return Entry(
        "either", "extra stream fields beside a valid event", fields, "event", document["id"]
    )


# --- hostile entries ---------------------------------------------------------------

Mutation = Callable[[st.DrawFn, dict[str, Any]], tuple[str, bytes]]


def _wrong_type(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    path, values = draw(st.sampled_from(WRONG_TYPES))
    with_speaker_if_needed(document, path)
    value = draw(values)
    set_at(document, path, value)
    return f"{'.'.join(path)} is {type(value).__name__}", dumps(document)


def _bad_identifier(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    field = draw(st.sampled_from(["statement_id", "actor_id", "topic_id"]))
    document["data"][field] = draw(BAD_IDENTIFIERS)
    return f"data.{field} is not an identifier", dumps(document)


def _bad_event_id(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    document["id"] = draw(BAD_EVENT_IDS)
    return "id is empty or longer than 128", dumps(document)


def _raw_control_character(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    path = draw(st.sampled_from(STRING_PATHS))
    with_speaker_if_needed(document, path)
    marker = "QQCONTROLQQ"
    set_at(document, path, marker)
    control = bytes([draw(st.integers(0, 0x1F))])
    raw = dumps(document).replace(marker.encode(), b"a" + control + b"b")
    return f"raw control character {control!r} in {'.'.join(path)}", raw


def _nul(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    where = draw(st.sampled_from([*STRING_PATHS, ("unknown value",), ("unknown key",)]))
    text = draw(TEXT)
    at = draw(st.integers(0, len(text)))
    with_nul = text[:at] + "\x00" + text[at:]
    if where == ("unknown value",):
        document["ext"] = {"list": [1, with_nul]}
    elif where == ("unknown key",):
        document["data"][with_nul] = 1
    else:
        with_speaker_if_needed(document, where)
        set_at(document, where, with_nul)
    return f"U+0000 in {'.'.join(where)}", dumps(document, ascii_only=draw(st.booleans()))


def _bad_date(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    path = draw(st.sampled_from(TIMESTAMP_PATHS))
    value = draw(BAD_DATES)
    set_at(document, path, value)
    return f"{'.'.join(path)} is {value!r}", dumps(document)


def _beyond_the_calendar(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    path, value = draw(CALENDAR_EDGES)
    set_at(document, path, value)
    return f"{'.'.join(path)} is {value}", dumps(document)


def _said_at_far_ahead(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    # Fixed bounds: a strategy whose bounds follow the clock is flaky to hypothesis.
    hours = draw(st.floats(25, FAR_AHEAD_HOURS))
    moment = (datetime.now(UTC) + timedelta(hours=hours)).astimezone(draw(OFFSETS))
    document["data"]["said_at"] = rfc3339(moment, zulu=False)
    return f"said_at {hours:.0f} hours ahead", dumps(document)


def _score_out_of_range(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    field = draw(st.sampled_from(["score", "confidence"]))
    low = -1.0 if field == "score" else 0.0
    document["data"][field] = draw(
        st.floats(min_value=1, exclude_min=True, allow_infinity=False)
        | st.floats(max_value=low, exclude_max=True, allow_infinity=False).filter(lambda v: v < low)
    )
    return f"data.{field} out of range", dumps(document)


def _score_contradicts_stance(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    stance = document["data"]["stance"]
    document["data"]["score"] = draw(CONTRADICTING_SCORES[stance])
    return f"score contradicts {stance}", dumps(document)


def _non_finite(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    where = draw(st.sampled_from(["score", "confidence", "unknown field", "unknown data field"]))
    marker = "QQNONFINITEQQ"
    if where == "unknown field":
        document["ext"] = {"deep": [marker]}
    elif where == "unknown data field":
        document["data"]["ext"] = marker
    else:
        document["data"][where] = marker
    literal = draw(NON_FINITE_LITERALS)
    return f"{literal.decode()} in {where}", dumps(document).replace(
        b'"%s"' % marker.encode(), literal
    )


def _unknown_type(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    document["type"] = draw(UNKNOWN_TYPES)
    return "unknown type", dumps(document)


def _unknown_specversion(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    document["specversion"] = draw(UNKNOWN_SPECVERSIONS)
    return "unknown specversion", dumps(document)


def _data_as_string(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    document["data"] = json.dumps(document["data"]) if draw(st.booleans()) else draw(TEXT)
    return "data is a string", dumps(document)


def _missing_field(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    path = draw(st.sampled_from(REQUIRED_PATHS))
    with_speaker_if_needed(document, path)
    delete_at(document, path)
    return f"{'.'.join(path)} missing", dumps(document)


def _quote_too_long(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    char = draw(st.sampled_from("qé中😀"))
    document["data"]["quote"] = char * draw(st.integers(4001, 16_000))
    return "quote over 4,000 characters", dumps(document, ascii_only=False)


def _bad_url(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    document["data"]["source_url"] = draw(BAD_URLS)
    return "source_url not absolute http(s)", dumps(document)


def _bad_enum(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    path, value = draw(BAD_ENUMS)
    set_at(document, path, value)
    return f"{'.'.join(path)} is {value!r}", dumps(document)


def _oversize(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    size = MAX_ENTRY_BYTES + draw(st.integers(1, 6 * 1024))
    return f"{size} bytes", padded(document, size)


def _nested_too_deep(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    depth = draw(st.integers(201, 400))
    document["data"]["ext"] = nested(depth)
    return f"unknown data field nested {depth} deep", dumps(document)


def _invalid_utf8(draw: st.DrawFn, document: dict[str, Any]) -> tuple[str, bytes]:
    raw = dumps(document)  # ASCII: every offset is a character boundary
    at = draw(st.integers(0, len(raw)))
    bad = draw(INVALID_UTF8)
    return f"{bad!r} at offset {at}", raw[:at] + bad + raw[at:]


MUTATIONS: tuple[Mutation, ...] = (
    _wrong_type,
    _bad_identifier,
    _bad_event_id,
    _raw_control_character,
    _nul,
    _bad_date,
    _beyond_the_calendar,
    _said_at_far_ahead,
    _score_out_of_range,
    _score_contradicts_stance,
    _non_finite,
    _unknown_type,
    _unknown_specversion,
    _data_as_string,
    _missing_field,
    _quote_too_long,
    _bad_url,
    _bad_enum,
    _oversize,
    _nested_too_deep,
    _invalid_utf8,
)


@st.composite
def mutated_statements(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid statement broken in exactly one place."""
    document = draw(STATEMENTS)
    mutation = draw(st.sampled_from(MUTATIONS))
    label, raw = mutation(draw, document)
    return f"{mutation.__name__.strip('_')}: {label}", raw


MUTATED_STATEMENTS = mutated_statements()


_ANY_JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(),  # NaN and Infinity literals included
    TEXT,
)
NOT_OBJECTS_AT_ALL = _ANY_JSON_LEAF | st.lists(
    st.recursive(
        _ANY_JSON_LEAF,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
        max_leaves=6,
    ),
    max_size=4,
)
DEEP_NESTING = st.tuples(
    st.sampled_from([b"[", b'{"a":', b'[{"a":']), st.integers(201, 10_000), st.booleans()
).map(lambda t: (t[0] * t[1]) + ((b"1" + _closing(t[0]) * t[1]) if t[2] else b""))


def _closing(opening: bytes) -> bytes:
    return {b"[": b"]", b'{"a":': b"}", b'[{"a":': b"}]"}[opening]


OTHER_EVENT_BYTES: st.SearchStrategy[tuple[str, bytes]] = st.one_of(
    st.tuples(st.just("random bytes"), st.binary(max_size=256)),
    st.tuples(
        st.just("empty or whitespace or not an event"),
        st.sampled_from(
            [b"", b" ", b"\n", b"null", b"{}", b"[]", b'""', b"\xef\xbb\xbf{}", b"9" * 5000]
        ),
    ),
    st.tuples(st.just("JSON that is not an object"), NOT_OBJECTS_AT_ALL.map(dumps)),
    st.tuples(
        st.just("JSON object that is not an event"),
        st.dictionaries(TEXT, JSON_VALUES, max_size=4).map(dumps),
    ),
    st.tuples(st.just("deep nesting"), DEEP_NESTING),
    st.tuples(
        st.just("huge non-JSON"),
        st.tuples(st.sampled_from([b"x", b"\xff", b'"']), st.integers(60_000, 70 * 1024)).map(
            lambda cn: cn[0] * cn[1]
        ),
    ),
    st.tuples(
        st.just("huge JSON string"),
        st.integers(MAX_ENTRY_BYTES - 64, 70 * 1024).map(lambda n: b'"' + b"x" * n + b'"'),
    ),
)


EVENT_BYTES = MUTATED_STATEMENTS | OTHER_EVENT_BYTES
# Broken statements are the richest kind, so they come up most often.
HOSTILE_KINDS = ("statement",) * 5 + ("other",) * 3 + ("extra fields", "no event", "fs")


@st.composite
def hostile_entries(draw: st.DrawFn) -> Entry:
    kind = draw(st.sampled_from(HOSTILE_KINDS))
    if kind == "no event":
        fields = draw(st.dictionaries(STREAM_KEYS, st.binary(max_size=64), min_size=1, max_size=3))
        return Entry("hostile", "no 'event' field", fields, "non-empty")
    if kind == "fs":
        header = draw(st.booleans())
        body = draw(st.binary(max_size=64))
        value = BinaryMessageFormatV1.IDENTITY_HEADER + body if header else body
        if value.startswith(BinaryMessageFormatV1.IDENTITY_HEADER):
            return Entry(
                "hostile", "junk in FastStream's binary format", {FASTSTREAM_FIELD: value}, "any"
            )
        return Entry(
            "hostile", "junk in FastStream's field", {FASTSTREAM_FIELD: value}, "faststream"
        )
    if kind == "statement":
        label, raw = draw(MUTATED_STATEMENTS)
    elif kind == "other":
        label, raw = draw(OTHER_EVENT_BYTES)
    else:
        label, raw = draw(EVENT_BYTES)
    fields = {EVENT_FIELD: raw}
    if kind == "extra fields":
        fields.update(draw(EXTRA_STREAM_FIELDS))
        label += ", with extra stream fields"
    return Entry("hostile", label, fields)


HOSTILE_ENTRIES = hostile_entries()
OTHER_ENTRIES = valid_entries() | either_entries()


@st.composite
def batches(draw: st.DrawFn, size: int) -> list[Entry]:
    """Hostile entries with valid ones interleaved."""
    hostile = draw(st.lists(HOSTILE_ENTRIES, min_size=1, max_size=size))
    others = draw(st.lists(OTHER_ENTRIES, min_size=1, max_size=max(1, size // 2)))
    return draw(st.permutations(hostile + others))


# --- running and checking ----------------------------------------------------------


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _position(entry_id: str) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition("-")
    return int(millis), int(sequence)


@pytest.fixture
def fuzz_settings(settings: Settings) -> Settings:
    # Small batches: one XREADGROUP holds a few entries, so batches mix kinds.
    return settings.model_copy(update={"batch_size": 4})


@pytest.fixture
async def running(
    fuzz_settings: Settings, engine: AsyncEngine
) -> AsyncIterator[tuple[Projector, asyncio.Task[None]]]:
    """One projector for all of a test's examples, and the task that runs it."""
    before = asyncio.all_tasks()
    async with projector_running(fuzz_settings, engine) as projector:
        (task,) = [
            t
            for t in asyncio.all_tasks() - before
            if getattr(t.get_coro(), "__qualname__", None) == "Projector.run"
        ]

        async def ready() -> bool:
            return projector.health.ready

        await eventually(ready, bool)
        yield projector, task


async def _consumed(client: aioredis.Redis, settings: Settings, ids: list[str]) -> bool:
    """Delivered to the group past the last id, and none of ``ids`` is pending."""
    groups = await client.xinfo_groups(settings.stream)
    (group,) = [g for g in groups if _text(g["name"]) == settings.group]
    if _position(_text(group["last-delivered-id"])) < _position(ids[-1]):
        return False
    pending = await client.xpending_range(
        settings.stream, settings.group, min=ids[0], max=ids[-1], count=len(ids)
    )
    return not pending


async def _outcomes(
    engine: AsyncEngine, stream: str, ids: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    async with engine.connect() as conn:
        events = await conn.execute(
            sa.text(
                "SELECT stream_entry_id, event_id FROM events WHERE stream_entry_id = ANY(:ids)"
            ),
            {"ids": ids},
        )
        dead = await conn.execute(
            sa.text(
                "SELECT stream_entry_id, raw, reason FROM dead_letters"
                " WHERE stream = :stream AND stream_entry_id = ANY(:ids)"
            ),
            {"stream": stream, "ids": ids},
        )
        return (
            {row.stream_entry_id: row for row in events},
            {row.stream_entry_id: row for row in dead},
        )


def _check_dead_letter(entry: Entry, row: Any) -> None:
    assert row.reason.strip(), entry
    raw = bytes(row.raw)
    if entry.raw_rule == "event":
        assert raw == entry.fields[EVENT_FIELD], entry
    elif entry.raw_rule == "faststream":
        assert raw == entry.fields[FASTSTREAM_FIELD], entry
    elif entry.raw_rule == "non-empty":
        assert raw, entry


async def publish_and_check(
    entries: list[Entry],
    running: tuple[Projector, asyncio.Task[None]],
    settings: Settings,
    engine: AsyncEngine,
    client: aioredis.Redis,
) -> None:
    projector, task = running
    published = [entry.published(uuid.uuid4().hex[:12]) for entry in entries]
    ids = [_text(await client.xadd(settings.stream, e.fields)) for e in published]

    await eventually(lambda: _consumed(client, settings, ids), bool, within=20)

    events, dead = await _outcomes(engine, settings.stream, ids)
    for entry_id, entry in zip(ids, published, strict=True):
        stored, rejected = events.get(entry_id), dead.get(entry_id)
        assert stored is None or rejected is None, ("in both tables", entry, rejected)
        if entry.outcome == "valid":
            assert stored is not None, ("valid entry not projected", entry, rejected)
        elif entry.outcome == "hostile":
            assert rejected is not None, ("hostile entry not dead-lettered", entry, stored)
        else:
            assert stored is not None or rejected is not None, ("entry lost", entry)
        if stored is not None:
            assert stored.event_id == entry.event_id, entry
        if rejected is not None:
            _check_dead_letter(entry, rejected)
    pending = await client.xpending(settings.stream, settings.group)
    assert pending["pending"] == 0
    assert not task.done()
    assert projector.health.ready


def tally(entries: list[Entry]) -> None:
    """Count the kinds of entry, for ``--hypothesis-show-statistics``."""
    for entry in entries:
        hypothesis.event(f"{entry.outcome}: {entry.label.split(':')[0].split(',')[0]}")


FUZZ = hypothesis.settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@FUZZ
@hypothesis.given(entries=batches(size=10))
async def test_hostile_entries_are_dead_lettered_and_the_consumer_stays_up(
    running: tuple[Projector, asyncio.Task[None]],
    fuzz_settings: Settings,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    entries: list[Entry],
) -> None:
    tally(entries)
    await publish_and_check(entries, running, fuzz_settings, engine, redis_client)


@pytest.mark.slow
@hypothesis.settings(FUZZ, max_examples=300)
@hypothesis.given(entries=batches(size=30))
async def test_hostile_entries_are_dead_lettered_and_the_consumer_stays_up_many(
    running: tuple[Projector, asyncio.Task[None]],
    fuzz_settings: Settings,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    entries: list[Entry],
) -> None:
    tally(entries)
    await publish_and_check(entries, running, fuzz_settings, engine, redis_client)


# --- the ends of the calendar, pinned by minimal entries the fuzzer found ----------


def statement_entry(
    event_id: str,
    statement_id: str,
    stance: str,
    said_at: str,
    *,
    kind: str = "recorded",
    time: str = "2024-01-01T00:00:00Z",
    outcome: Outcome = "valid",
    **data: Any,
) -> Entry:
    """A statement event on the series (us, t), as a stream entry."""
    document = statement(
        event_id,
        statement_id,
        "us",
        "t",
        stance,
        said_at,
        kind=f"statement.{kind}",
        time=time,
        **data,
    )
    return Entry(outcome, event_id, {EVENT_FIELD: dumps(document)}, "event", event_id)


@pytest.mark.parametrize(
    ("field", "entry"),
    [
        ("time", statement_entry("e1", "s1", "support", "2024-01-01T00:00:00Z", time=t))
        for t in ("0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01")
    ]
    + [("data.said_at", statement_entry("e1", "s1", "support", "0001-01-01T00:00:00+00:01"))]
    + [
        (
            "data.published_at",
            statement_entry("e1", "s1", "support", "2024-01-01T00:00:00Z", published_at=t),
        )
        for t in ("0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01")
    ],
    ids=[
        "time-before",
        "time-after",
        "said_at-before",
        "published_at-before",
        "published_at-after",
    ],
)
async def test_a_timestamp_beyond_the_utc_calendar_is_dead_lettered_at_its_field(
    running: tuple[Projector, asyncio.Task[None]],
    fuzz_settings: Settings,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    field: str,
    entry: Entry,
) -> None:
    """Once accepted, then refused by asyncpg as 'date value out of range' (a store error)."""
    hostile = Entry("hostile", entry.label, entry.fields, "event", entry.event_id)
    await publish_and_check([hostile], running, fuzz_settings, engine, redis_client)
    async with engine.connect() as conn:
        reason = await conn.scalar(
            sa.text("SELECT reason FROM dead_letters WHERE stream = :s ORDER BY id DESC LIMIT 1"),
            {"s": fuzz_settings.stream},
        )
    assert reason.startswith(f"{field}: must lie after 0001-01-01T00:00:00Z"), reason


@pytest.mark.parametrize(
    "entries",
    [
        [
            statement_entry("e1", "s1", "support", "2020-01-01T00:00:00Z"),
            statement_entry("e2", "s2", "oppose", "0001-01-01T00:00:00Z", outcome="hostile"),
            statement_entry("e3", "s3", "neutral", "0001-01-01T00:00:01Z"),
            statement_entry("e4", "s4", "oppose", "2021-01-01T00:00:00Z"),
        ],
        [
            statement_entry("e1", "s1", "support", "2020-01-01T00:00:00Z"),
            statement_entry(
                "e2",
                "s1",
                "oppose",
                "2020-01-01T00:00:00Z",
                kind="corrected",
                time="9999-12-31T23:59:59.999999Z",
                outcome="hostile",
            ),
            statement_entry(
                "e3",
                "s1",
                "oppose",
                "2020-01-01T00:00:00Z",
                kind="corrected",
                time="9999-12-31T23:59:59.999998Z",
            ),
            statement_entry(
                "e4",
                "s1",
                "neutral",
                "2020-01-01T00:00:00Z",
                kind="corrected",
                time="2025-01-01T00:00:00Z",
            ),
        ],
    ],
    ids=["said_at-first-instant", "correction-time-last-instant"],
)
async def test_the_ends_of_the_calendar_do_not_break_later_events(
    running: tuple[Projector, asyncio.Task[None]],
    fuzz_settings: Settings,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    entries: list[Entry],
) -> None:
    """The exact first and last instants were once stored as infinity and read back naive,
    failing every later event of the series; they are refused, the instants just inside
    are stored and read back as what they are."""
    for entry in entries:  # one at a time: the old bug needed the stored value read back
        await publish_and_check([entry], running, fuzz_settings, engine, redis_client)

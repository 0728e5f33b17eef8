"""parse_event on hostile and edge-case input: it answers, it never raises."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stanceline.contract import (
    FUTURE_TOLERANCE,
    MAX_ENTRY_BYTES,
    Rejection,
    Speaker,
    StatementData,
    StatementRecorded,
    canonical_json,
    event_document,
    parse_event,
)

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)


def statement(**data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "example-event",
        "source": "urn:stanceline:test",
        "type": "stanceline.statement.recorded.v1",
        "time": "2024-12-31T18:00:00Z",
        "data": {
            "statement_id": "example-statement",
            "actor_id": "example-actor",
            "topic_id": "example-topic",
            "stance": "oppose",
            "said_at": "2024-12-31T12:00:00Z",
            **data,
        },
    }


def parse(document: Any, now: datetime = NOW) -> Any:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return parse_event(raw, now=now)


def rejected(document: Any, now: datetime = NOW) -> Rejection:
    result = parse(document, now)
    assert isinstance(result, Rejection), result
    return result


def accepted(document: Any, now: datetime = NOW) -> StatementRecorded:
    result = parse(document, now)
    assert isinstance(result, StatementRecorded), result
    return result


# --- bytes that are not a v1 event --------------------------------------------


def test_invalid_utf8() -> None:
    raw = json.dumps(statement(quote="café"), ensure_ascii=False).encode()
    raw = raw.replace("é".encode(), b"\xe9")  # Latin-1, as a careless publisher would
    rejection = rejected(raw)
    assert rejection.field is None
    assert "UTF-8" in rejection.reason


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b'{"a":1,}', b"\xef\xbb\xbf{}"])
def test_not_json(raw: bytes) -> None:
    rejection = rejected(raw)
    assert rejection.field is None
    assert rejection.reason.startswith("entry is not JSON")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [(b"[1, 2]", "an array"), (b'"x"', "a string"), (b"3", "a number"), (b"null", "null")],
)
def test_not_an_object(raw: bytes, kind: str) -> None:
    assert rejected(raw) == Rejection(f"entry is {kind}, not a JSON object", None)


def test_oversize_entry_names_the_limit() -> None:
    document = statement()
    document["padding"] = "x" * MAX_ENTRY_BYTES
    rejection = rejected(document)
    assert rejection.field is None
    assert str(MAX_ENTRY_BYTES) in rejection.reason


def test_entry_of_exactly_the_limit_is_accepted() -> None:
    document = statement()
    document["padding"] = ""
    size = len(json.dumps(document).encode())
    document["padding"] = "x" * (MAX_ENTRY_BYTES - size)
    assert len(json.dumps(document).encode()) == MAX_ENTRY_BYTES
    accepted(document)


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        json.dumps(statement()).encode()[:-1] + b',"deep":' + b"[" * 3000 + b"]" * 3000 + b"}",
    ],
)
def test_deep_nesting(raw: bytes) -> None:
    rejection = rejected(raw)
    assert rejection.field is None


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_score(literal: str) -> None:
    raw = json.dumps(statement(score=-0.5)).replace("-0.5", literal).encode()
    assert rejected(raw).field == "data.score"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e400"])
@pytest.mark.parametrize(
    ("where", "field"), [("top", "ext"), ("data", "data.ext"), ("deep", "data.ext.0.x")]
)
def test_non_finite_extras(literal: str, where: str, field: str) -> None:
    document = statement()
    if where == "top":
        document["ext"] = "HERE"
    elif where == "data":
        document["data"]["ext"] = "HERE"
    else:
        document["data"]["ext"] = [{"x": "HERE"}]
    raw = json.dumps(document).replace('"HERE"', literal).encode()
    rejection = rejected(raw)
    assert rejection.field == field
    assert "NaN" in rejection.reason


def test_huge_integers() -> None:
    raw = json.dumps(statement()).encode()[:-1] + b',"n":' + b"9" * 5000 + b"}"
    assert rejected(raw).field is None
    moderately_big = json.dumps(statement()).encode()[:-1] + b',"n":' + b"9" * 40 + b"}"
    event = accepted(moderately_big)
    assert event_document(event)["n"] == int("9" * 40)


def test_raw_control_characters_are_not_json() -> None:
    raw = json.dumps(statement(quote="a")).encode().replace(b'"a"', b'"a\x01b"')
    assert rejected(raw).field is None


def test_escaped_control_characters_are_kept() -> None:
    event = accepted(statement(quote="line one\nline\ttwo\u0001"))
    assert event.data.quote == "line one\nline\ttwo\u0001"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (statement(quote="a\u0000b"), "data.quote"),
        ({**statement(), "ext": {"k": ["\u0000"]}}, "ext.k.0"),
        ({**statement(), "e\u0000t": 1}, "e\\u0000t"),
    ],
)
def test_nul_is_refused_because_postgres_cannot_store_it(document: Any, field: str) -> None:
    rejection = rejected(document)
    assert rejection.field == field
    assert "\x00" not in rejection.reason


def test_escaped_backslash_before_u0000_is_not_nul() -> None:
    event = accepted(statement(quote="\\u0000"))
    assert event.data.quote == "\\u0000"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("0000-01-01T00:00:00Z", "data.said_at"),
        ("10000-01-01T00:00:00Z", "data.said_at"),
        ("2023-02-30T12:00:00Z", "data.said_at"),
        ("9999-12-31T23:59:59-23:59", "data.said_at"),
    ],
)
def test_absurd_dates_are_rejected(value: str, field: str) -> None:
    assert rejected(statement(said_at=value)).field == field


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+23:59",  # the UTC instant lies in year 0
        "0001-01-01T00:00:00Z",  # asyncpg would store it as -infinity
        "9999-12-31T23:59:59.999999Z",  # ... and this as infinity
        "9999-12-31T23:00:00-01:00",  # the UTC instant lies in year 10000
    ],
)
@pytest.mark.parametrize("field", ["time", "said_at", "published_at"])
def test_instants_beyond_the_calendar_are_rejected_at_their_field(value: str, field: str) -> None:
    document = statement()
    if field == "time":
        document["time"] = value
    else:
        document["data"][field] = value
    rejection = rejected(document)
    path = field if field == "time" else f"data.{field}"
    assert rejection.field == path
    assert rejection.reason.startswith(f"{path}: must lie after 0001-01-01T00:00:00Z")


def test_the_instants_just_inside_the_calendar_are_accepted() -> None:
    first = accepted(statement(said_at="0001-01-01T00:00:00.000001Z"))
    assert first.data.said_at.year == 1
    last = statement(said_at="2024-01-01T00:00:00Z")
    last["time"] = "9999-12-31T23:59:59.999998Z"
    assert accepted(last).time.year == 9999


# --- the envelope -------------------------------------------------------------------


def test_missing_specversion() -> None:
    document = statement()
    del document["specversion"]
    assert rejected(document).field == "specversion"


@pytest.mark.parametrize("value", ["0.3", "2.0", 1.0, None, ["1.0"]])
def test_unsupported_specversion(value: Any) -> None:
    rejection = rejected({**statement(), "specversion": value, "type": "nope"})
    assert rejection.field == "specversion"
    assert json.dumps(value) in rejection.reason


@pytest.mark.parametrize("value", ["stanceline.statement.recorded.v2", 5, None, "x" * 10_000])
def test_unknown_type_is_quoted_briefly(value: Any) -> None:
    rejection = rejected({**statement(), "type": value})
    assert rejection.field == "type"
    assert len(rejection.reason) < 120
    assert json.dumps(value)[:40] in rejection.reason


def test_missing_type() -> None:
    document = statement()
    del document["type"]
    assert rejected(document).field == "type"


def test_data_as_a_string_is_not_unwrapped() -> None:
    document = statement()
    document["data"] = json.dumps(document["data"])
    rejection = rejected(document)
    assert rejection.field == "data"


def test_field_errors_name_the_field() -> None:
    document = statement()
    del document["data"]["said_at"]
    assert rejected(document) == Rejection("data.said_at: Field required", "data.said_at")
    assert rejected(statement(score=0.5)) == Rejection(
        "data.score: score 0.5 contradicts stance 'oppose' (oppose needs score < 0)",
        "data.score",
    )
    assert rejected(statement(speaker={"role": "x"})).field == "data.speaker.name"


def test_time_must_carry_an_offset() -> None:
    rejection = rejected({**statement(), "time": "2024-12-31T18:00:00"})
    assert rejection.field == "time"
    assert "RFC 3339" in rejection.reason


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_event(b"{}", now=datetime(2025, 1, 1))


# --- the future -------------------------------------------------------------------------


def test_said_at_up_to_the_tolerance_ahead_is_accepted() -> None:
    ahead = (NOW + FUTURE_TOLERANCE).isoformat()
    accepted(statement(said_at=ahead))


def test_said_at_beyond_the_tolerance_is_rejected() -> None:
    ahead = (NOW + FUTURE_TOLERANCE + timedelta(seconds=1)).isoformat()
    rejection = rejected(statement(said_at=ahead))
    assert rejection.field == "data.said_at"
    assert "more than 24 hours after" in rejection.reason


def test_future_is_judged_by_instant_not_by_wall_clock() -> None:
    # 2025-01-02T20:00+10:00 is 10:00Z, less than 24 h after NOW (12:00Z the day before).
    accepted(statement(said_at="2025-01-02T20:00:00+10:00"))


def test_future_rule_applies_to_corrections_too() -> None:
    document = {**statement(said_at="2030-01-01T00:00:00Z")}
    document["type"] = "stanceline.statement.corrected.v1"
    assert rejected(document).field == "data.said_at"


# --- tolerant reader and the stored form --------------------------------------------------


def test_extension_attributes_and_unknown_data_fields_are_kept() -> None:
    document = statement(example_note={"nested": [1, "two"]}, speaker={"name": "S", "x": 1})
    document["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    stored = event_document(accepted(document))
    assert stored["traceparent"] == document["traceparent"]
    assert stored["data"]["example_note"] == {"nested": [1, "two"]}
    assert stored["data"]["speaker"]["x"] == 1


def test_canonical_json_ignores_spelling_not_content() -> None:
    plain = json.dumps(statement(score=-1)).encode()
    spelled = json.dumps(
        {**statement(score=-1.0, quote=None), "datacontenttype": None}, indent=2
    ).encode()
    reordered = json.dumps(dict(reversed(list(statement(score=-1).items())))).encode()
    texts = {canonical_json(accepted(raw)) for raw in (plain, spelled, reordered)}
    assert len(texts) == 1
    assert canonical_json(accepted(statement(score=-0.9))) not in texts


def test_canonical_json_is_compact_and_sorted() -> None:
    text = canonical_json(accepted(statement()))
    assert ": " not in text
    assert ", " not in text
    assert list(json.loads(text)) == sorted(json.loads(text))


def test_effective_score_and_confidence_defaults() -> None:
    assert accepted(statement()).data.effective_score == -1.0
    assert accepted(statement()).data.effective_confidence == 1.0
    support = accepted(statement(stance="support", score=0.25, confidence=0.5)).data
    assert (support.effective_score, support.effective_confidence) == (0.25, 0.5)
    assert accepted(statement(stance="neutral")).data.effective_score == 0.0


def test_models_can_be_built_in_python() -> None:
    data = StatementData(
        statement_id="s",
        actor_id="a",
        topic_id="t",
        stance="support",
        said_at=datetime(2024, 1, 1, tzinfo=UTC),
        speaker=Speaker(name="S"),
    )
    event = StatementRecorded(
        specversion="1.0",
        id="e",
        source="test",
        type="stanceline.statement.recorded.v1",
        time=datetime(2024, 1, 1, tzinfo=UTC),
        data=data,
    )
    assert parse(canonical_json(event).encode()) == event


# --- never raises --------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def _check(result: Any) -> None:
    if isinstance(result, Rejection):
        assert result.reason
        assert len(result.reason) < 300
        assert "\n" not in result.reason
        assert "\x00" not in result.reason
        assert result.field is None or len(result.field) < 200


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_never_raises_on_bytes(raw: bytes) -> None:
    _check(parse_event(raw, now=NOW))


@settings(max_examples=300)
@given(_JSON)
def test_never_raises_on_json_values(value: Any) -> None:
    _check(parse_event(json.dumps(value).encode(), now=NOW))


@settings(max_examples=300)
@given(
    st.sampled_from(["", "data"]),
    st.dictionaries(
        st.sampled_from([*statement(), *statement()["data"], "speaker", "ext"]) | st.text(),
        _JSON,
        max_size=4,
    ),
    st.datetimes(timezones=st.just(UTC)),
)
def test_never_raises_on_damaged_events(where: str, changes: dict[str, Any], now: datetime) -> None:
    document = statement()
    (document["data"] if where else document).update(changes)
    _check(parse_event(json.dumps(document).encode(), now=now))

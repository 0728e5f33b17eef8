"""The v1 contract: JSON Schemas, pydantic models and examples must agree.

Upstream services validate with the schemas; stanceline validates with the
models. Every example line must pass both, every invalid example must fail
both at the same field, and a property test hunts for any event on which the
two disagree.
"""

from __future__ import annotations

import copy
import json
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from pydantic import BaseModel

from stanceline.contract import (
    EVENT_TYPES,
    ActorData,
    Event,
    Rejection,
    RetractionData,
    Speaker,
    StatementData,
    TopicData,
    canonical_json,
    event_document,
    parse_event,
)
from stanceline.contract.fields import HTTP_URL_PATTERN, IDENTIFIER_PATTERN, RFC3339_PATTERN

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "contracts" / "schemas"
EXAMPLES = ROOT / "contracts" / "examples"
NOW = datetime(2025, 1, 1, tzinfo=UTC)

SCHEMA_DOCUMENTS: dict[str, dict[str, Any]] = {
    event_type: json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())
    for event_type in EVENT_TYPES
}
# Format checking covers date-time and uri only where jsonschema's optional
# checkers are installed; the schemas' patterns do not depend on them.
VALIDATORS = {
    event_type: Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for event_type, schema in SCHEMA_DOCUMENTS.items()
}
DATA_MODELS: dict[str, type[BaseModel]] = {
    "stanceline.statement.recorded.v1": StatementData,
    "stanceline.statement.corrected.v1": StatementData,
    "stanceline.statement.retracted.v1": RetractionData,
    "stanceline.actor.registered.v1": ActorData,
    "stanceline.topic.registered.v1": TopicData,
}


def example_lines() -> list[Any]:
    return [
        pytest.param(line, id=f"{path.name}:{number}")
        for path in sorted(EXAMPLES.glob("*.jsonl"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
    ]


def invalid_cases() -> list[Any]:
    return [
        pytest.param(json.loads(path.read_text()), id=path.stem)
        for path in sorted((EXAMPLES / "invalid").glob("*.json"))
    ]


def schema_error_fields(document: Any) -> set[str]:
    """Dotted fields the schemas object to; an unknown type fails every schema."""
    event_type = document.get("type") if isinstance(document, dict) else None
    validators = (
        [VALIDATORS[event_type]]
        if isinstance(event_type, str) and event_type in VALIDATORS
        else list(VALIDATORS.values())
    )
    fields: set[str] = set()
    for validator in validators:
        for error in validator.iter_errors(document):
            fields.update(_fields_of(error))
    return fields


def _fields_of(error: SchemaError) -> set[str]:
    """The error's field, plus those of the branches of an anyOf that failed."""
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required":
        required: Any = error.validator_value
        instance: Any = error.instance
        missing = [name for name in required if name not in instance]
        return {".".join([*path, name]) for name in missing}
    nested = {field for branch in error.context or () for field in _fields_of(branch)}
    return {".".join(path), *nested}


def schema_accepts(document: Any) -> bool:
    return not schema_error_fields(document)


# --- the schemas themselves -------------------------------------------------


def test_one_schema_per_event_type() -> None:
    names = {path.name for path in SCHEMAS.glob("*.schema.json")}
    assert names == {f"{event_type}.schema.json" for event_type in EVENT_TYPES}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_is_valid_draft_2020_12(event_type: str) -> None:
    schema = SCHEMA_DOCUMENTS[event_type]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["type"] == {"const": event_type}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_fields_match_the_model(event_type: str) -> None:
    data_schema = SCHEMA_DOCUMENTS[event_type]["properties"]["data"]
    model = DATA_MODELS[event_type]
    assert set(data_schema["properties"]) == set(model.model_fields)
    required = {name for name, info in model.model_fields.items() if info.is_required()}
    assert set(data_schema["required"]) == required
    for name, info in model.model_fields.items():
        enum = data_schema["properties"][name].get("enum")
        if enum is not None:
            assert [value for value in enum if value is not None] == list(
                _literal_values(info.annotation)
            ), name


def _literal_values(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    return tuple(
        value
        for arg in typing.get_args(annotation)
        if arg is not type(None)
        for value in _literal_values(arg)
    )


def test_recorded_and_corrected_share_one_data_schema() -> None:
    recorded = SCHEMA_DOCUMENTS["stanceline.statement.recorded.v1"]
    corrected = SCHEMA_DOCUMENTS["stanceline.statement.corrected.v1"]
    assert recorded["properties"]["data"] == corrected["properties"]["data"]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_patterns_are_the_models_patterns(event_type: str) -> None:
    schema = SCHEMA_DOCUMENTS[event_type]
    assert schema["$defs"]["identifier"]["pattern"] == IDENTIFIER_PATTERN
    assert schema["$defs"]["timestamp"]["pattern"] == RFC3339_PATTERN
    if "source_url" in schema["properties"]["data"]["properties"]:
        url = schema["properties"]["data"]["properties"]["source_url"]["anyOf"][0]
        assert url["pattern"] == HTTP_URL_PATTERN


# --- the examples -------------------------------------------------------------


@pytest.mark.parametrize("line", example_lines())
def test_example_passes_schema_and_parser(line: str) -> None:
    document = json.loads(line)
    VALIDATORS[document["type"]].validate(document)
    event = parse_event(line.encode(), now=NOW)
    assert not isinstance(event, Rejection), event


@pytest.mark.parametrize("line", example_lines())
def test_stored_document_round_trips(line: str) -> None:
    event = parse_event(line.encode(), now=NOW)
    assert not isinstance(event, Rejection)
    stored = event_document(event)
    VALIDATORS[stored["type"]].validate(stored)
    again = parse_event(canonical_json(event).encode(), now=NOW)
    assert again == event
    assert not isinstance(again, Rejection)
    assert canonical_json(again) == canonical_json(event)


def _founding() -> list[Event]:
    lines = (EXAMPLES / "founding-example.jsonl").read_text().splitlines()
    events = [parse_event(line.encode(), now=NOW) for line in lines]
    return [event for event in events if not isinstance(event, Rejection)]


def test_founding_example_registers_parents_before_children() -> None:
    events = _founding()
    actors = [event.data for event in events if isinstance(event.data, ActorData)]
    topics = [event.data for event in events if isinstance(event.data, TopicData)]
    assert len(events) == 24
    assert len(actors) == 10
    assert [topic.kind for topic in topics] == ["policy", "claim", "claim"]
    seen: set[str] = set()
    for actor in actors:
        assert actor.parent_id is None or actor.parent_id in seen
        seen.add(actor.actor_id)
    assert len({event.id for event in events}) == len(events)


def test_founding_statements_quote_only_exact_words() -> None:
    statements = [event.data for event in _founding() if isinstance(event.data, StatementData)]
    assert len(statements) == 11
    assert all(statement.source_url is None for statement in statements)
    quoted = {s.statement_id: s.quote for s in statements if s.quote is not None}
    assert set(quoted.values()) == {
        "I don't know if it's true or not, in terms of the veracity of that imagery",
        "We don't support the use of U.S.-made equipment for attacks inside Russia",
        "looking into those reports",
        "Every bullet is tracked",
    }
    us_policy = [
        (s.said_at.date().isoformat(), s.actor_id, s.stance)
        for s in statements
        if s.topic_id == "us-arms-strikes-inside-russia" and s.actor_id.startswith("us")
    ]
    assert us_policy == [
        ("2023-05-24", "us.nsc", "oppose"),
        ("2024-05-30", "us.white-house", "neutral"),
        ("2024-11-17", "us.white-house", "support"),
    ]


def test_other_types_cover_correction_retraction_and_extras() -> None:
    lines = (EXAMPLES / "other-types.jsonl").read_text().splitlines()
    documents = [json.loads(line) for line in lines]
    assert {document["type"] for document in documents} >= {
        "stanceline.statement.corrected.v1",
        "stanceline.statement.retracted.v1",
    }
    assert all(document["id"].startswith("example-") for document in documents)
    extended = documents[0]
    event = parse_event(lines[0].encode(), now=NOW)
    assert not isinstance(event, Rejection)
    stored = event_document(event)
    assert stored["exampleext"] == extended["exampleext"]
    assert stored["data"]["example_note"] == extended["data"]["example_note"]


# --- invalid examples -----------------------------------------------------------


@pytest.mark.parametrize("case", invalid_cases())
def test_invalid_example_fails_schema_and_parser_at_the_field(case: dict[str, Any]) -> None:
    event, field = case["event"], case["field"]
    assert field in schema_error_fields(event)
    rejection = parse_event(json.dumps(event).encode(), now=NOW)
    assert isinstance(rejection, Rejection)
    assert rejection.field == field, rejection.reason
    assert rejection.reason.startswith(f"{field}: ")


def test_invalid_examples_cover_the_required_cases() -> None:
    names = {path.stem for path in (EXAMPLES / "invalid").glob("*.json")}
    assert names >= {
        "missing-said-at",
        "wrong-stance",
        "score-contradicts-oppose",
        "bad-statement-id-chars",
        "quote-too-long",
        "relative-source-url",
        "unknown-type",
        "missing-time",
        "time-without-offset",
        "data-as-string",
        "confidence-above-one",
    }


# --- schema and models agree on mutated events ------------------------------------

_INTERESTING = st.sampled_from(
    [
        "2023-05-24T12:00:00Z",
        "2023-05-24t12:00:00.5+05:30",
        "2023-05-24T12:00:00.123456789-23:59",
        "2023-05-24 12:00:00Z",
        "2023-05-24T12:00Z",
        "2023-05-24T12:00:00",
        "2023-05-24",
        "1684929600",
        "2023-05-24T24:00:00Z",
        "2023-13-01T00:00:00Z",
        "2023-05-24T12:00:00+24:00",
        "https://example.org/a?b#c",
        "HTTP://EXAMPLE.ORG",
        "http://x",
        "https://",
        "//example.org/a",
        "ftp://example.org",
        "https://exa mple.org",
        "mailto:someone@example.org",
        "us.nsc",
        "a:b_c-d.e",
        "a" * 128,
        "a" * 129,
        "a b",
        "é",
        "",
        "support",
        "oppose",
        "neutral",
        "Support",
        "investigate",
        "uncommitted",
        "armed-group",
        "claim",
        "1.0",
        "application/json",
        *EVENT_TYPES,
        -1,
        -0.5,
        0,
        -0.0,
        0.5,
        1,
        1.5,
        -1.0000001,
        True,
        None,
        [],
        {},
        {"name": "x"},
        {"name": "x", "role": None},
        ["a", "b"],
    ]
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_BASES = [json.loads(line.values[0]) for line in example_lines()]
_DELETE = object()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (key, *_strings(item))]
    return []


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(_BASES),
    in_data=st.booleans(),
    key=st.sampled_from(
        [
            *sorted({k for base in _BASES for k in base["data"]}),
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "datacontenttype",
            "data",
            "newfield",
        ]
    ),
    value=_INTERESTING | _JSON | st.just(_DELETE),
)
def test_schema_and_parser_agree(base: dict[str, Any], in_data: bool, key: str, value: Any) -> None:
    # Known, documented differences: Python's `re` lets `$` match before a
    # final newline, and the parser alone refuses U+0000 (Postgres cannot
    # store it).
    assume(not any(s.endswith("\n") or "\x00" in s for s in _strings(value)))
    document = copy.deepcopy(base)
    target = document["data"] if in_data and isinstance(document["data"], dict) else document
    if value is _DELETE:
        target.pop(key, None)
    else:
        target[key] = value
    far_future = datetime(9999, 12, 30, tzinfo=UTC)
    parsed = parse_event(json.dumps(document).encode(), now=far_future)
    assert schema_accepts(document) == (not isinstance(parsed, Rejection)), parsed


def test_speaker_model_matches_schema() -> None:
    speaker = SCHEMA_DOCUMENTS["stanceline.statement.recorded.v1"]["properties"]["data"][
        "properties"
    ]["speaker"]["anyOf"][0]
    assert set(speaker["properties"]) == set(Speaker.model_fields)
    assert speaker["required"] == ["name"]


@pytest.mark.skipif(
    "date-time" not in Draft202012Validator.FORMAT_CHECKER.checkers,
    reason="date-time format checking needs jsonschema[format-nongpl]",
)
def test_format_checking_rejects_impossible_dates_as_the_parser_does() -> None:
    document = json.loads((EXAMPLES / "other-types.jsonl").read_text().splitlines()[1])
    document["data"]["said_at"] = "2023-02-30T12:00:00Z"
    assert schema_error_fields(document) == {"data.said_at"}
    assert isinstance(parse_event(json.dumps(document).encode(), now=NOW), Rejection)

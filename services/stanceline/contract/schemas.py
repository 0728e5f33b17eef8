"""The v1 JSON Schemas, generated from the wire models.

Publishers in other languages validate with `contracts/schemas/`, stanceline with
the pydantic models; generating the one from the other is what keeps them from
drifting apart. pydantic's own output carries every constraint that lives in a
type (lengths, bounds, enums, the identifier and URL patterns). What it cannot
see is added here, each from one definition:

- the RFC 3339 text check runs in a validator, so `Timestamp` fields are found
  by that validator and given `fields.RFC3339_PATTERN`;
- the score's sign rule is a field validator, so its schema form is stated
  once below (`_SCORE_SIGN`), and the contract tests hold the two to each other;
- the wording for publishers (titles, field descriptions) lives in the tables
  below, and an entry that names no field any more is an error, not dead text.
- the URL pattern's field also gets `format: uri`, for validators that check
  formats; the contract tests hold both to the model on the same inputs.

The output is reshaped into the form a person reads: sub-models inlined, shared
field types under `$defs`, nullable fields as `["number", "null"]` or an enum
with `null` where that is plain JSON Schema, no pydantic titles or defaults.
"""

from __future__ import annotations

import json
import typing
from typing import Any, Final

from pydantic import BaseModel, BeforeValidator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from stanceline.contract.data import Stance
from stanceline.contract.events import (
    ACTOR_REGISTERED,
    EVENT_TYPES,
    STATEMENT_CORRECTED,
    STATEMENT_RECORDED,
    STATEMENT_RETRACTED,
    TOPIC_REGISTERED,
    Event,
)
from stanceline.contract.fields import (
    HTTP_URL_PATTERN,
    IDENTIFIER_PATTERN,
    RFC3339_PATTERN,
    Timestamp,
)

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

ENVELOPE_NOTE: Final = (
    "A CloudEvents 1.0 event in structured JSON form. Unknown extension attributes and"
    " unknown data fields are allowed and kept (tolerant reader)."
)

EVENT_WORDS: Final[dict[str, tuple[str, str]]] = {
    STATEMENT_RECORDED: ("Statement recorded (v1)", "An actor took a stance on a topic."),
    STATEMENT_CORRECTED: (
        "Statement corrected (v1)",
        "The whole statement, for an existing statement_id, as it should read; of several"
        " corrections the latest (time, id) wins.",
    ),
    STATEMENT_RETRACTED: (
        "Statement retracted (v1)",
        "A statement is withdrawn from every timeline.",
    ),
    ACTOR_REGISTERED: (
        "Actor registered (v1)",
        "A state, organisation, person or armed group, optionally under a parent; of several"
        " registrations the latest (time, id) wins.",
    ),
    TOPIC_REGISTERED: (
        "Topic registered (v1)",
        "A proposition that actors take stances on; of several registrations the latest"
        " (time, id) wins.",
    ),
}
"""(title, what it means) per event type, for the schema and the AsyncAPI message."""

# Keyed by (model, field); "envelope" is every event class's CloudEvents attributes.
_FIELD_WORDS: Final[dict[tuple[str, str], str]] = {
    ("envelope", "id"): "Idempotency key.",
    ("envelope", "source"): "The publisher.",
    ("envelope", "time"): (
        "When the event was produced; orders corrections and registrations. Required here."
    ),
    ("StatementData", "said_at"): (
        "When the statement was made; at most 24 hours after the event is recorded."
    ),
    ("StatementData", "score"): (
        "-1..1; default +1/-1/0 by stance; its sign must agree with the stance."
    ),
    ("StatementData", "confidence"): (
        "0..1, default 1: how sure the coder or model that produced the event is."
    ),
    ("StatementData", "quote"): "Exact words only; at most 4000 characters.",
    ("StatementData", "source_url"): "Absolute http or https URL.",
    ("StatementData", "published_at"): "When an outlet reported the statement.",
    ("StatementData", "certainty"): "The speaker's own commitment, apart from confidence.",
}

_SHARED_WORDS: Final[dict[str, str]] = {
    "identifier": "1–128 letters, digits and . _ : -",
    "timestamp": "RFC 3339 date-time with a UTC offset (Z or ±hh:mm), seconds required.",
}

# The schema form of StatementData's `_score_agrees_with_stance`: which bounds a
# number given as `score` must meet, per stance.
_SCORE_SIGN: Final[dict[str, dict[str, int]]] = {
    "support": {"exclusiveMinimum": 0},
    "oppose": {"exclusiveMaximum": 0},
    "neutral": {"minimum": 0, "maximum": 0},
}

# Envelope attributes in the order the CloudEvents spec lists them, `data` last.
_ENVELOPE_ORDER: Final = ("specversion", "id", "source", "type", "time", "datacontenttype", "data")

# Keywords in the order a reader wants them; any other keyword follows, as pydantic had it.
_KEYWORD_ORDER: Final = (
    "$ref",
    "description",
    "type",
    "const",
    "enum",
    "format",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "items",
    "required",
    "properties",
    "additionalProperties",
    "anyOf",
    "allOf",
)
_NUMERIC_KEYWORDS: Final = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
_NULL: Final[JsonSchemaValue] = {"type": "null"}

# The marker the generator leaves on a `Timestamp` for the reshaping to find.
_SHARED_MARK: Final = "x-stanceline-shared"


def _rfc3339_guard() -> Any:
    """The validator that makes a datetime a `Timestamp`, taken from the alias itself."""
    for metadata in typing.get_args(Timestamp)[1:]:
        if isinstance(metadata, BeforeValidator):
            return metadata.func
    raise LookupError("Timestamp has no BeforeValidator: its RFC 3339 check moved")


_RFC3339_GUARD: Final = _rfc3339_guard()


class _Generator(GenerateJsonSchema):
    """pydantic's generator, plus a mark on fields whose RFC 3339 check it cannot see."""

    def function_before_schema(
        self, schema: core_schema.BeforeValidatorFunctionSchema
    ) -> JsonSchemaValue:
        generated = super().function_before_schema(schema)
        if schema["function"]["function"] is _RFC3339_GUARD:
            return {**generated, _SHARED_MARK: "timestamp"}
        return generated


def event_models() -> dict[str, type[BaseModel]]:
    """Each v1 event type's model, read off the `Event` union so a new type is not missed."""
    (union, *_) = typing.get_args(Event)
    models: dict[str, type[BaseModel]] = {}
    for model in typing.get_args(union):
        (event_type,) = typing.get_args(model.model_fields["type"].annotation)
        models[event_type] = model
    if tuple(models) != EVENT_TYPES:
        raise ValueError(f"the Event union {tuple(models)} is not EVENT_TYPES {EVENT_TYPES}")
    return models


def event_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every v1 event type, checking that every word table entry was used."""
    shaper = _Shaper()
    schemas = {
        event_type: shaper.event(event_type, model) for event_type, model in event_models().items()
    }
    unused = set(_FIELD_WORDS) - shaper.worded
    if unused:
        raise ValueError(f"descriptions for fields the models no longer have: {sorted(unused)}")
    return schemas


def schema_text(schema: dict[str, Any]) -> str:
    """The checked-in spelling: two-space indent, UTF-8 as is, one final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def schema_file_name(event_type: str) -> str:
    return f"{event_type}.schema.json"


class _Shaper:
    """Turns pydantic's output for one event model into the publisher's schema."""

    def __init__(self) -> None:
        self.worded: set[tuple[str, str]] = set()
        self._models: dict[str, JsonSchemaValue] = {}
        self._shared: dict[str, JsonSchemaValue] = {}

    def event(self, event_type: str, model: type[BaseModel]) -> dict[str, Any]:
        generated = model.model_json_schema(schema_generator=_Generator)
        self._models = generated.get("$defs", {})
        self._shared = {}
        body = self._object(generated, "envelope", order=_ENVELOPE_ORDER)
        title, meaning = EVENT_WORDS[event_type]
        return {
            "$schema": DIALECT,
            "$id": f"urn:stanceline:schema:{event_type}",
            "title": title,
            "description": f"{meaning} {ENVELOPE_NOTE}",
            **body,
            "$defs": {name: self._shared[name] for name in sorted(self._shared)},
        }

    def _object(
        self, node: JsonSchemaValue, scope: str, order: tuple[str, ...] = ()
    ) -> JsonSchemaValue:
        names = sorted(
            node["properties"], key=lambda name: order.index(name) if name in order else len(order)
        )
        properties: dict[str, JsonSchemaValue] = {}
        for name in names:
            words = _FIELD_WORDS.get((scope, name))
            if words is not None:
                self.worded.add((scope, name))
            properties[name] = self._schema(node["properties"][name], words)
        shaped: JsonSchemaValue = {
            "type": "object",
            "required": [name for name in names if name in node.get("required", ())],
            "properties": properties,
        }
        if node.get("additionalProperties") is False:
            shaped["additionalProperties"] = False
        if "stance" in properties and "score" in properties:
            shaped["allOf"] = _score_rules()
        return shaped

    def _schema(self, node: JsonSchemaValue, words: str | None = None) -> JsonSchemaValue:
        if "$ref" in node:  # a sub-model: inlined, its docstring is for Python readers
            name = node["$ref"].removeprefix("#/$defs/")
            return self._with_words(self._object(self._models[name], name), words)
        if "anyOf" in node and _NULL in node["anyOf"] and len(node["anyOf"]) == 2:
            (other,) = (branch for branch in node["anyOf"] if branch != _NULL)
            return self._with_words(_nullable(self._schema(other)), words)
        shared = self._shared_name(node)
        plain = {
            key: _number(key, value)
            for key, value in node.items()
            if key not in ("title", "default", _SHARED_MARK)
        }
        if "const" in plain or "enum" in plain:
            plain.pop("type", None)  # the values carry their type
        if plain.get("pattern") == HTTP_URL_PATTERN:
            plain["format"] = "uri"
        if plain.get("type") == "array" and "items" in plain:
            plain["items"] = self._schema(plain["items"])
        if plain.get("type") == "object" and "properties" in plain:
            return self._with_words(self._object(plain, ""), words)
        if shared is not None:
            self._share(shared, plain)
            return _ordered({"$ref": f"#/$defs/{shared}", **_described(words)})
        return self._with_words(plain, words)

    def _shared_name(self, node: JsonSchemaValue) -> str | None:
        if _SHARED_MARK in node:
            name: str = node[_SHARED_MARK]
            return name
        if node.get("type") == "string" and node.get("pattern") == IDENTIFIER_PATTERN:
            return "identifier"
        return None

    def _share(self, name: str, plain: JsonSchemaValue) -> None:
        if name == "timestamp":
            plain = {**plain, "pattern": RFC3339_PATTERN}
        definition = _ordered({**plain, "description": _SHARED_WORDS[name]})
        known = self._shared.setdefault(name, definition)
        if known != definition:
            raise ValueError(f"two different {name} types: {known} and {definition}")

    @staticmethod
    def _with_words(schema: JsonSchemaValue, words: str | None) -> JsonSchemaValue:
        return _ordered({**schema, **_described(words)})


def _nullable(schema: JsonSchemaValue) -> JsonSchemaValue:
    """`X | None` in the plainest JSON Schema that says it."""
    if "const" in schema or "enum" in schema:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        rest = {key: value for key, value in schema.items() if key not in ("const", "enum")}
        return {**rest, "enum": [*values, None]}
    simple = isinstance(schema.get("type"), str) and schema["type"] != "object"
    if simple and "format" not in schema:
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, _NULL]}


def _score_rules() -> list[JsonSchemaValue]:
    stances = typing.get_args(Stance)
    if set(stances) != set(_SCORE_SIGN):
        raise ValueError(f"_SCORE_SIGN covers {sorted(_SCORE_SIGN)}, the stances are {stances}")
    return [
        {
            "if": {
                "properties": {"stance": {"const": stance}, "score": {"type": "number"}},
                "required": ["stance", "score"],
            },
            "then": {"properties": {"score": _SCORE_SIGN[stance]}},
        }
        for stance in stances
    ]


def _described(words: str | None) -> JsonSchemaValue:
    return {"description": words} if words is not None else {}


def _number(key: str, value: Any) -> Any:
    """JSON has one number type: a bound of 1.0 reads as 1."""
    if key in _NUMERIC_KEYWORDS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _ordered(schema: JsonSchemaValue) -> JsonSchemaValue:
    def rank(key: str) -> int:
        return _KEYWORD_ORDER.index(key) if key in _KEYWORD_ORDER else len(_KEYWORD_ORDER)

    return {key: schema[key] for key in sorted(schema, key=rank)}

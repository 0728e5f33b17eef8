"""Every example validates as a publisher would check it: with `jsonschema`, from the files alone.

Nothing from stanceline is imported here, on purpose: a publisher has only
`contracts/`, so the examples must pass (and the invalid ones fail) on the
JSON Schemas and on the AsyncAPI document's payloads, with no pydantic in the
loop. (tests/unit/test_contract.py holds the models to the same examples.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
EXAMPLES = CONTRACTS / "examples"
ASYNCAPI: dict[str, Any] = yaml.safe_load((CONTRACTS / "asyncapi.yaml").read_text())

SCHEMA_VALIDATORS: dict[str, Validator] = {
    path.name.removesuffix(".schema.json"): Draft202012Validator(
        json.loads(path.read_text()), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    for path in sorted((CONTRACTS / "schemas").glob("*.schema.json"))
}
# AsyncAPI's own schema format is a superset of draft-07; each payload is a
# `$ref` into the document, so the document itself is the root it resolves in.
PAYLOAD_VALIDATORS: dict[str, Validator] = {
    name: Draft7Validator(
        {**ASYNCAPI, "$ref": f"#/components/messages/{name}/payload"},
        format_checker=Draft7Validator.FORMAT_CHECKER,
    )
    for name in ASYNCAPI["components"]["messages"]
}


def example_events() -> list[Any]:
    return [
        pytest.param(json.loads(line), id=f"{path.name}:{number}")
        for path in sorted(EXAMPLES.glob("*.jsonl"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if line.strip()
    ]


def invalid_cases() -> list[Any]:
    return [
        pytest.param(json.loads(path.read_text()), id=path.stem)
        for path in sorted((EXAMPLES / "invalid").glob("*.json"))
    ]


def test_there_is_a_schema_and_a_message_per_type_and_examples_of_each() -> None:
    assert len(SCHEMA_VALIDATORS) == 5
    assert set(PAYLOAD_VALIDATORS) == set(SCHEMA_VALIDATORS)
    types = {case.values[0]["type"] for case in example_events()}
    assert types == set(SCHEMA_VALIDATORS)


@pytest.mark.parametrize("event", example_events())
def test_example_validates_against_its_schema(event: dict[str, Any]) -> None:
    SCHEMA_VALIDATORS[event["type"]].validate(event)


@pytest.mark.parametrize("event", example_events())
def test_example_validates_against_its_asyncapi_payload(event: dict[str, Any]) -> None:
    PAYLOAD_VALIDATORS[event["type"]].validate(event)


@pytest.mark.parametrize("message", sorted(ASYNCAPI["components"]["messages"]))
def test_asyncapi_message_examples_validate_against_their_payload(message: str) -> None:
    examples = ASYNCAPI["components"]["messages"][message]["examples"]
    assert examples
    for example in examples:
        PAYLOAD_VALIDATORS[message].validate(example["payload"])
        SCHEMA_VALIDATORS[message].validate(example["payload"])


@pytest.mark.parametrize("case", invalid_cases())
def test_invalid_example_fails_at_its_field(case: dict[str, Any]) -> None:
    event, field = case["event"], case["field"]
    for validators in (SCHEMA_VALIDATORS, PAYLOAD_VALIDATORS):
        # An unknown type has no schema of its own: it must fail every one.
        chosen = [validators[event["type"]]] if event["type"] in validators else validators.values()
        for validator in chosen:
            fields = {name for error in validator.iter_errors(event) for name in _fields(error)}
            assert field in fields, (case["description"], sorted(fields))


def _fields(error: ValidationError) -> set[str]:
    """Dotted fields an error names: a missing one for `required`, else its path,
    plus those of the failed branches of an `anyOf`."""
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required":
        instance: Any = error.instance
        required: Any = error.validator_value
        return {".".join([*path, name]) for name in required if name not in instance}
    nested = {name for branch in error.context or () for name in _fields(branch)}
    return {".".join(path), *nested}

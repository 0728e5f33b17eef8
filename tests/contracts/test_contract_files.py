"""The checked-in contract files are what the wire models generate, and the command keeps them so.

Publishers read `contracts/`; stanceline validates with the models. A model
changed without `stanceline contracts write` fails here, naming the file.
"""

from __future__ import annotations

import json
import shutil
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from stanceline.cli import app
from stanceline.cli.contracts import compare, default_directory, generated_files
from stanceline.contract.schemas import event_models, event_schemas

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
GENERATED = generated_files(CONTRACTS)


def test_the_command_looks_at_the_checkout() -> None:
    assert default_directory().resolve() == CONTRACTS


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_checked_in_file_is_what_the_models_generate(name: str) -> None:
    path = CONTRACTS / name
    assert path.exists(), f"{name} is missing: run `stanceline contracts write`"
    assert path.read_text(encoding="utf-8") == GENERATED[name], (
        f"{name} differs from what the wire models generate: run `stanceline contracts write`"
    )


def test_no_schema_file_without_an_event_type() -> None:
    assert {name for name, state in compare(CONTRACTS).items() if state != "unchanged"} == set()


def test_check_passes_on_the_checkout() -> None:
    result = CliRunner().invoke(app, ["contracts", "check", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert set(report["files"]) == set(GENERATED)


def test_check_fails_on_drift_and_write_repairs_it(tmp_path: Path) -> None:
    directory = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, directory)
    recorded = directory / "schemas" / "stanceline.statement.recorded.v1.schema.json"
    schema = json.loads(recorded.read_text())
    schema["properties"]["data"]["properties"]["quote"]["maxLength"] = 5000
    recorded.write_text(json.dumps(schema, indent=2))
    (directory / "schemas" / "stanceline.statement.deleted.v1.schema.json").write_text("{}")
    (directory / "asyncapi.yaml").unlink()
    runner = CliRunner()

    drifted = runner.invoke(app, ["contracts", "check", "--dir", str(directory), "--json"])
    assert drifted.exit_code == 1
    states = json.loads(drifted.stdout)["files"]
    assert {name: state for name, state in states.items() if state != "unchanged"} == {
        "schemas/stanceline.statement.recorded.v1.schema.json": "differs",
        "schemas/stanceline.statement.deleted.v1.schema.json": "stale",
        "asyncapi.yaml": "missing",
    }

    written = runner.invoke(app, ["contracts", "write", "--dir", str(directory)])
    assert written.exit_code == 0, written.output
    assert runner.invoke(app, ["contracts", "check", "--dir", str(directory)]).exit_code == 0
    assert not (directory / "schemas" / "stanceline.statement.deleted.v1.schema.json").exists()
    for name, text in GENERATED.items():
        assert (directory / name).read_text(encoding="utf-8") == text


# --- the generator reads the models' constraints, not a copy of them -------------------

# pydantic's constraint attributes and the JSON Schema keyword each must become.
_KEYWORDS = {
    "min_length": "minLength",
    "max_length": "maxLength",
    "pattern": "pattern",
    "ge": "minimum",
    "le": "maximum",
}


def _metadata(annotation: Any) -> list[Any]:
    """Every constraint object inside an annotation, through Optional and Annotated."""
    found: list[Any] = []
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        for item in extra:
            found.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        found.extend(_metadata(base))
    else:
        for arg in typing.get_args(annotation):
            found.extend(_metadata(arg))
    return found


def _constraints(info: FieldInfo) -> dict[str, Any]:
    constraints: dict[str, Any] = {}
    for item in [*info.metadata, *_metadata(info.annotation)]:
        for attribute, keyword in _KEYWORDS.items():
            value = getattr(item, attribute, None)
            if value is not None:
                constraints[keyword] = value
    return constraints


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """The field's own schema: through `$ref` into `$defs`, and past the `null` branch."""
    if "$ref" in node:
        return _resolve(schema, schema["$defs"][node["$ref"].removeprefix("#/$defs/")])
    branches = [branch for branch in node.get("anyOf", ()) if branch != {"type": "null"}]
    return _resolve(schema, branches[0]) if len(branches) == 1 else node


def _fields(model: type[BaseModel], node: dict[str, Any]) -> list[tuple[str, FieldInfo, Any]]:
    return [(name, info, node["properties"][name]) for name, info in model.model_fields.items()]


@pytest.mark.parametrize("event_type", sorted(event_models()))
def test_every_model_constraint_is_in_the_schema(event_type: str) -> None:
    model = event_models()[event_type]
    schema = event_schemas()[event_type]
    pending = [(model, schema)]
    checked = 0
    while pending:
        current, node = pending.pop()
        for name, info, field_node in _fields(current, node):
            field_schema = _resolve(schema, field_node)
            for keyword, value in _constraints(info).items():
                assert field_schema.get(keyword) == value, (current.__name__, name, keyword)
                checked += 1
            nested = [
                arg
                for arg in (info.annotation, *typing.get_args(info.annotation))
                if isinstance(arg, type) and issubclass(arg, BaseModel)
            ]
            if nested:
                pending.append((nested[0], field_schema))
    assert checked > 0


def test_timestamps_carry_the_rfc3339_pattern_pydantic_cannot_see() -> None:
    """`Timestamp`'s text check is a validator: the generator must still emit it."""
    from stanceline.contract.fields import RFC3339_PATTERN

    for schema in event_schemas().values():
        time = _resolve(schema, schema["properties"]["time"])
        assert time["pattern"] == RFC3339_PATTERN
        assert time["format"] == "date-time"

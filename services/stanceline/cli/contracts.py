"""``stanceline contracts``: write or check the contract files publishers read.

`contracts/schemas/*.schema.json` and `contracts/asyncapi.yaml` are generated
from the wire models, and `contracts/openapi.json` from the read model's app (every
route, the admin ones included), so that a change to the models or the routes shows up
as a change to the files in review; ``check`` is what CI and the tests run to catch a
model or a route changed without them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from stanceline import resources
from stanceline.cli.common import Json, app, console, emit, results
from stanceline.contract.asyncapi import asyncapi_document, to_yaml
from stanceline.contract.schemas import event_schemas, schema_file_name, schema_text
from stanceline.projector.entries import EVENT_FIELD
from stanceline.readmodel.openapi import exported_text as openapi_text
from stanceline.settings import Settings

ASYNCAPI_FILE = "asyncapi.yaml"
OPENAPI_FILE = "openapi.json"
SCHEMAS_DIR = "schemas"
EXAMPLES_DIR = "examples"

Status = Literal["unchanged", "written", "differs", "missing", "stale", "removed"]

contracts = typer.Typer(
    help="The v1 contracts: JSON Schemas and the AsyncAPI document for publishers, "
    "generated from the wire models, and the HTTP API's OpenAPI document.",
    no_args_is_help=True,
)
app.add_typer(contracts, name="contracts", rich_help_panel="Developing")


def default_directory() -> Path:
    """The checkout's contracts/ (or, installed from a wheel, the copy it carries)."""
    return resources.founding_example().parent.parent


Directory = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        file_okay=False,
        help="The contracts directory (default: the checkout's contracts/).",
    ),
]


def generated_files(directory: Path) -> dict[str, str]:
    """Relative path to text, for every file the code says the directory must hold.

    The AsyncAPI document names the stream's default name (not this environment's
    STANCELINE_STREAM) and shows, per message, the example events of that type
    found in ``directory/examples``.
    """
    files = {
        f"{SCHEMAS_DIR}/{schema_file_name(event_type)}": schema_text(schema)
        for event_type, schema in event_schemas().items()
    }
    document = asyncapi_document(
        stream=str(Settings.model_fields["stream"].default),
        field=EVENT_FIELD.decode(),
        examples=_first_examples(directory / EXAMPLES_DIR),
    )
    files[ASYNCAPI_FILE] = to_yaml(document)
    files[OPENAPI_FILE] = openapi_text()
    return files


def _first_examples(examples: Path) -> dict[str, list[dict[str, Any]]]:
    """The first example of each event type, in file-name order: one per message is enough."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(examples.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                event = json.loads(line)
                found.setdefault(str(event.get("type")), [event])
    return found


def compare(directory: Path) -> dict[str, Status]:
    """Each generated file's state on disk, and stale schemas no event type has any more."""
    expected = generated_files(directory)
    states: dict[str, Status] = {}
    for name, text in expected.items():
        path = directory / name
        if not path.exists():
            states[name] = "missing"
        else:
            states[name] = "unchanged" if path.read_text(encoding="utf-8") == text else "differs"
    for path in sorted((directory / SCHEMAS_DIR).glob("*.schema.json")):
        name = f"{SCHEMAS_DIR}/{path.name}"
        if name not in expected:
            states[name] = "stale"
    return states


@contracts.command("write")
def write(directory: Directory = None, json_output: Json = False) -> None:
    """Write the JSON Schemas, the AsyncAPI document and the OpenAPI document."""
    directory = directory or default_directory()
    expected = generated_files(directory)
    done: dict[str, Status] = {}
    for name, state in compare(directory).items():
        path = directory / name
        if state == "stale":
            path.unlink()
            done[name] = "removed"
        elif state == "unchanged":
            done[name] = state
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(expected[name], encoding="utf-8")
            done[name] = "written"
    _report(directory, done, ok=True, json_output=json_output)


@contracts.command("check")
def check(directory: Directory = None, json_output: Json = False) -> None:
    """Exit 1 if the files differ from what the wire models and the routes generate."""
    directory = directory or default_directory()
    states = compare(directory)
    ok = all(state == "unchanged" for state in states.values())
    _report(directory, states, ok=ok, json_output=json_output)
    if not ok:
        raise typer.Exit(1)


def _report(directory: Path, states: dict[str, Status], *, ok: bool, json_output: bool) -> None:
    if json_output:
        emit({"directory": str(directory), "ok": ok, "files": states})
        return
    changed = {name: state for name, state in states.items() if state != "unchanged"}
    for name, state in changed.items():
        sys.stdout.write(f"{state:9}  {directory / name}\n")
    if ok:
        results().print(f"{len(states)} contract files, {len(changed)} changed, in {directory}")
    else:
        console.print(
            f"[red]error:[/] {len(changed)} of {len(states)} contract files do not match the "
            "wire models and routes; run `stanceline contracts write` and commit the result",
            highlight=False,
        )

"""contracts/asyncapi.yaml says what the code does, and the AsyncAPI parser accepts it.

The drift test (test_contract_files.py) holds the file to the generator; these
hold the generator to the code it describes: the projector's stream and entry
field, the five event types, the JSON Schemas as payloads. And the YAML is
written by hand (no PyYAML at run time), so a real YAML reader checks it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stanceline.contract import EVENT_TYPES
from stanceline.contract.asyncapi import FIELD_EXTENSION, to_yaml
from stanceline.contract.schemas import event_schemas
from stanceline.projector.entries import EVENT_FIELD
from stanceline.settings import Settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DOCUMENT_PATH = ROOT / "contracts" / "asyncapi.yaml"
DOCUMENT: dict[str, Any] = yaml.safe_load(DOCUMENT_PATH.read_text())
VALIDATOR = HERE / "validate_asyncapi.mjs"
PARSER = HERE / "node_modules" / "@asyncapi" / "parser" / "package.json"


def _deref(reference: dict[str, Any]) -> Any:
    """What a `$ref` points at, following references to references."""
    node: Any = DOCUMENT
    for part in reference["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return _deref(node) if isinstance(node, dict) and "$ref" in node else node


def test_is_asyncapi_3_0() -> None:
    assert DOCUMENT["asyncapi"] == "3.0.0"


def test_one_channel_at_the_projectors_default_stream() -> None:
    (channel,) = DOCUMENT["channels"].values()
    assert Settings.model_fields["stream"].default == "stanceline:statements"
    assert channel["address"] == "stanceline:statements"


def test_the_entry_field_is_the_one_the_projector_reads() -> None:
    (channel,) = DOCUMENT["channels"].values()
    assert EVENT_FIELD == b"event"
    assert channel[FIELD_EXTENSION] == "event"
    assert "field `event`" in channel["description"]


def test_one_message_per_event_type_on_the_channel_and_the_operation() -> None:
    (channel,) = DOCUMENT["channels"].values()
    messages = [_deref(reference) for reference in channel["messages"].values()]
    assert [message["name"] for message in messages] == list(EVENT_TYPES)
    (operation,) = DOCUMENT["operations"].values()
    assert operation["action"] == "receive"
    assert _deref(operation["channel"]) is channel
    assert [_deref(reference)["name"] for reference in operation["messages"]] == list(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_each_payload_is_that_types_json_schema(event_type: str) -> None:
    """The same schema, its `$defs` moved to components (AsyncAPI resolves refs document-wide)."""
    schema = json.loads(
        json.dumps(event_schemas()[event_type]).replace("#/$defs/", "#/components/schemas/")
    )
    payload = _deref(DOCUMENT["components"]["messages"][event_type]["payload"])
    assert payload == {k: v for k, v in schema.items() if k not in ("$schema", "$id", "$defs")}
    for name, definition in schema["$defs"].items():
        assert DOCUMENT["components"]["schemas"][name] == definition


# --- the hand-written YAML --------------------------------------------------------------

_TRICKY = st.sampled_from(
    [
        "",
        " ",
        "yes",
        "No",
        "on",
        "NULL",
        "~",
        "1.0",
        "0x1f",
        "1e3",
        ".inf",
        "2024-05-30",
        "a: b",
        "a #b",
        "#a",
        "- a",
        "[a]",
        "{a}",
        "a,b",
        "*a",
        "&a",
        "!a",
        "|",
        ">",
        "'q'",
        '"q"',
        "<<",
        "=",
        "%a",
        "@a",
        "`a`",
        "tab\there",
        "line\nbreak",
        "trailing ",
        "é ± –",
        "\u2028\x85\ufeff",
        "$ref",
        "x " * 80,
        "word " * 40 + "end",
    ]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | _TRICKY
)
_DATA = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12) | _TRICKY, children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(document=st.dictionaries(st.text(max_size=12) | _TRICKY, _DATA, max_size=5))
def test_yaml_reads_back_as_the_data_it_was_written_from(document: dict[str, Any]) -> None:
    assert yaml.safe_load(to_yaml(document)) == (document or {})


def test_long_prose_folds_and_short_lists_flow() -> None:
    text = to_yaml({"d": "word " * 40 + "end", "r": ["a", "b"], "e": [], "m": {}})
    assert text.startswith("d: >-\n  word word")
    assert "r: [a, b]\n" in text
    assert "e: []\nm: {}\n" in text


# --- the AsyncAPI project's own parser -------------------------------------------------


def test_the_asyncapi_parser_accepts_the_document() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the AsyncAPI parser runs on Node.js")
    if not PARSER.exists():
        pytest.skip(
            "@asyncapi/parser is not installed: run "
            "`npm install --prefix tests/contracts --ignore-scripts` (.ci/run does)"
        )
    done = subprocess.run(
        [node, str(VALIDATOR), str(DOCUMENT_PATH)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok "), done.stdout
    assert "5 messages" in done.stdout

"""`contracts/openapi.json` is the app's own document, and it documents what the app answers.

A route added or changed without `stanceline contracts write` fails here. The checks on
the document's shape are the ones clients rely on: errors only as problem+json with the
Problem schema, no FastAPI 422, conditional reads with their headers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from stanceline.readmodel.app import create_app
from stanceline.readmodel.openapi import exported_text
from stanceline.readmodel.problems import PROBLEM_JSON
from stanceline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "contracts" / "openapi.json"
DOCUMENT: dict[str, Any] = json.loads(OPENAPI.read_text(encoding="utf-8"))
OPERATIONS = {
    f"{method.upper()} {path}": operation
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
}


def test_checked_in_document_is_what_the_app_generates() -> None:
    assert OPENAPI.read_text(encoding="utf-8") == exported_text(), (
        "contracts/openapi.json differs from the app's routes: run `stanceline contracts write`"
    )


async def test_the_running_app_serves_the_same_document() -> None:
    settings = Settings.model_construct(admin_token=SecretStr("t"))
    app = create_app(database_url="postgresql://nowhere/none", settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        served = (await http.get("/openapi.json")).json()
    assert served == DOCUMENT


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_every_error_is_documented_as_problem_json_only(name: str) -> None:
    responses = OPERATIONS[name]["responses"]
    assert "422" not in responses
    errors = {status: r for status, r in responses.items() if int(status) >= 400}
    for status, response in errors.items():
        assert response["content"] == {
            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
        }, f"{name} {status}"
    if OPERATIONS[name].get("parameters"):
        assert "400" in errors, f"{name} takes parameters but documents no 400"
    if name.split()[1].startswith("/v1/"):
        assert "Retry-After" in errors["503"]["headers"], name


def test_the_problem_schema_is_the_one_the_handler_renders() -> None:
    problem = DOCUMENT["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status"}
    assert {"detail", "instance", "invalid-params"} <= set(problem["properties"])
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]


def test_conditional_reads_document_etag_and_if_none_match() -> None:
    conditional = {name for name, op in OPERATIONS.items() if "304" in op["responses"]}
    assert {"GET /v1/changes", "GET /v1/statements/{statement_id}"} <= conditional
    for name in conditional:
        operation = OPERATIONS[name]
        headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert "If-None-Match" in headers, name
        for status in ("200", "304"):
            assert "ETag" in operation["responses"][status]["headers"], f"{name} {status}"


def test_the_stream_is_documented_as_an_event_stream_with_its_resume_header() -> None:
    stream = OPERATIONS["GET /v1/stream"]
    assert set(stream["responses"]["200"]["content"]) == {"text/event-stream"}
    names = {p["name"] for p in stream["parameters"]}
    assert {"cursor", "actor", "topic", "kind", "include_descendants", "Last-Event-ID"} <= names

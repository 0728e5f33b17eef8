"""The OpenAPI document, shaped to say what the app really answers.

FastAPI's generator documents what it would answer by default: a 422 with its own
validation schema, errors as ``application/json``, no conditional headers. Our handlers
answer otherwise (readmodel/problems.py), so the document is corrected here, once for
every route, rather than route by route where one could be forgotten:

- every error response is ``application/problem+json`` with the Problem schema, and only
  that media type;
- an operation with parameters answers a bad one 400 (never 422);
- every ``/v1`` operation and ``/readyz`` may answer 503 (Postgres away) with
  ``Retry-After``;
- an operation that documents 304 takes ``If-None-Match`` and answers with ``ETag``;
- HEAD, answered wherever GET is (readmodel/http.py), is left implicit, as HTTP makes it.

``stanceline contracts write`` exports the result to ``contracts/openapi.json``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from stanceline.readmodel.problems import PROBLEM_JSON, RETRY_AFTER_SECONDS, Problem

_REF = "#/components/schemas/{model}"
PROBLEM_CONTENT: dict[str, Any] = {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}}
ETAG_HEADER: dict[str, Any] = {
    "description": "A strong validator of this exact body; send it back as If-None-Match.",
    "schema": {"type": "string"},
}
IF_NONE_MATCH: dict[str, Any] = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "ETags the client holds (or `*`): 304 with no body when one still matches.",
    "schema": {"type": "string"},
}
RETRY_AFTER: dict[str, Any] = {
    "description": f"Seconds to wait before trying again ({RETRY_AFTER_SECONDS}).",
    "schema": {"type": "integer"},
}


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (built once per app, then cached like FastAPI's own)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        problem = Problem.model_json_schema(by_alias=True, ref_template=_REF)
        components.update(problem.pop("$defs", {}))
        components["Problem"] = problem
        for path, item in schema.get("paths", {}).items():
            item.pop("head", None)
            for operation in item.values():
                _shape(path, operation)
        app.openapi_schema = schema
    return app.openapi_schema


def _shape(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if responses.pop("422", None) is not None or operation.get("parameters"):
        responses.setdefault("400", {"description": "Invalid request parameters"})
    if path.startswith("/v1/") or path == "/readyz":
        responses.setdefault("503", {"description": "A server this answer needs is away"})
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            response["content"] = PROBLEM_CONTENT
            if response.get("description") in (None, "Problem"):
                response["description"] = "Problem details (RFC 9457)"
        if status == "503":
            response.setdefault("headers", {})["Retry-After"] = RETRY_AFTER
    if "304" in responses:
        operation["parameters"] = [*operation.get("parameters", []), IF_NONE_MATCH]
        for status in ("200", "304"):
            responses[status].setdefault("headers", {})["ETag"] = ETAG_HEADER


def exported() -> dict[str, Any]:
    """The document ``contracts/openapi.json`` holds: the app with every optional part
    mounted (the admin routes too), built without connecting to anything."""
    from pydantic import SecretStr

    from stanceline.readmodel.app import create_app
    from stanceline.settings import Settings

    settings = Settings.model_construct(admin_token=SecretStr("documentation"))
    return create_app(database_url="postgresql://documentation/only", settings=settings).openapi()


def exported_text() -> str:
    """``exported()`` as the file's exact text (sorted nowhere: FastAPI's order is stable)."""
    return json.dumps(exported(), indent=2, ensure_ascii=False) + "\n"

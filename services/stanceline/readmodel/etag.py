"""Conditional GETs: a dashboard polling an unchanged history gets a bodiless 304."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified (If-None-Match)"}
}
"""A conditional route's ``responses`` entry; readmodel/openapi.py adds ETag and If-None-Match
to every operation that has it."""


def conditional(request: Request, model: BaseModel) -> Response:
    """The response with a strong ETag over its exact bytes; 304 when the client has it."""
    return conditional_bytes(request, model.__pydantic_serializer__.to_json(model))


def conditional_bytes(request: Request, body: bytes) -> Response:
    """``conditional`` for a body already serialised (JSON)."""
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    wanted = request.headers.get("if-none-match", "")
    if tag in {t.strip().removeprefix("W/") for t in wanted.split(",")} or wanted.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)

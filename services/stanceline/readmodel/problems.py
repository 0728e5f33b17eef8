"""RFC 9457 problem details: every error the API returns has this one shape."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from stanceline.store.errors import is_transient

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class InvalidParam(BaseModel):
    name: str
    reason: str


class Problem(BaseModel):
    type: str = Field(description="A URI reference naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = Field(default=None, alias="invalid-params")

    model_config = {"populate_by_name": True}


class ApiError(Exception):
    """An error that knows its status; raised by routes, rendered by one handler."""

    status = 500
    kind = "internal"
    title = "Internal error"

    def __init__(self, detail: str, invalid: list[InvalidParam] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.invalid = invalid


class NotFound(ApiError):
    status = 404
    kind = "not-found"
    title = "Not found"


class BadRequest(ApiError):
    status = 400
    kind = "bad-request"
    title = "Invalid request parameters"


RETRY_AFTER_SECONDS = 5
"""What a 503 asks a client to wait: about the projector's first retries."""


class NotReady(ApiError):
    status = 503
    kind = "not-ready"
    title = "Not ready"


class Unavailable(ApiError):
    status = 503
    kind = "unavailable"
    title = "A server this answer needs is unavailable"


class Unauthorized(ApiError):
    """401 with the RFC 6750 challenge that tells a client how to authenticate."""

    status = 401
    kind = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str, *, invalid_token: bool) -> None:
        super().__init__(detail)
        self.challenge = 'Bearer realm="stanceline-admin"' + (
            ', error="invalid_token"' if invalid_token else ""
        )


def problem_response(
    status: int,
    kind: str,
    title: str,
    detail: str | None,
    request: Request,
    invalid: list[InvalidParam] | None = None,
) -> JSONResponse:
    body = Problem(
        type=f"/problems/{kind}",
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        invalid_params=invalid,
    )
    return JSONResponse(
        body.model_dump(by_alias=True, exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
    )


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path", "body", "header")]
    return ".".join(parts) or "request"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = problem_response(
            exc.status, exc.kind, exc.title, exc.detail, request, exc.invalid
        )
        if exc.status == Unavailable.status:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        response = problem_response(exc.status, exc.kind, exc.title, exc.detail, request)
        response.headers["WWW-Authenticate"] = exc.challenge
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        invalid = [
            InvalidParam(name=_location(tuple(e["loc"])), reason=e["msg"]) for e in exc.errors()
        ]
        detail = "; ".join(f"{p.name}: {p.reason}" for p in invalid)
        return problem_response(400, "bad-request", BadRequest.title, detail, request, invalid)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            detail = f"no route for {request.method} {request.url.path}"
            return problem_response(404, "not-found", NotFound.title, detail, request)
        kind = f"http-{exc.status_code}"
        response = problem_response(exc.status_code, kind, str(exc.detail), None, request)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # Every route on the path, not only the first one the router tried (RFC 9110).
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if not is_transient(exc):
            return await unexpected(request, exc)
        # An outage, not a bug: the client should come back, and will be answered then.
        log.warning(
            "%s %s: the database is unreachable (%s)",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        response = problem_response(
            Unavailable.status,
            Unavailable.kind,
            Unavailable.title,
            "the database is unreachable; try again shortly",
            request,
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    # By class, so the handler answers in place (a handler for Exception answers too, but
    # only after the error has left the app, with a traceback in the log).
    for kind in (DBAPIError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(kind, database_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal", ApiError.title, None, request)

    from stanceline.readmodel.openapi import document

    app.openapi = lambda: document(app)  # type: ignore[method-assign]


def allowed_methods(request: Request) -> list[str]:
    """The methods some route answers on this path; HEAD wherever GET (readmodel/http.py).

    Each method is tried against the app's routes as the router would (FastAPI nests
    included routers, so their methods are not a flat list to read)."""
    allowed = {
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.routes
        )
    }
    if "GET" in allowed:
        allowed.add("HEAD")
    return sorted(allowed)


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries saying these statuses come back as problem+json (the Problem schema
    and the media type are filled in by readmodel/openapi.py, for every error response)."""
    return {status: {"description": _DESCRIPTIONS.get(status, "Problem")} for status in statuses}


_DESCRIPTIONS = {
    400: "Invalid request parameters",
    401: "No admin token, or not the configured one",
    404: "No such resource",
    503: "A server this answer needs is away",
}

"""HTTP as clients expect it, for every route at once: HEAD wherever GET, CORS on demand.

FastAPI routes answer only the methods they declare, so a HEAD (what monitors, caches
and link checkers send) would be a 405. Rather than declare HEAD on each route (and have
a route added later without it), HEAD is served here as the GET it stands for, with the
headers the GET would carry and no body.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXPOSED = ["ETag", "Retry-After", "WWW-Authenticate", "Allow"]
"""Response headers a cross-origin script may read (CORS hides all but a few by default)."""
REQUESTED = ["Authorization", "If-None-Match", "Last-Event-ID", "Content-Type"]


class HeadAsGet:
    """Answer HEAD with the GET's status and headers, and end the response there.

    The response ends as soon as its headers are out, so a HEAD on an endless body (the
    SSE stream) completes too: the app then sees its client gone and stops.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # A copy: the server keeps its own scope saying HEAD, and sends no body for it.
        inner = {**scope, "method": "GET"}
        ended = False

        async def head_send(message: Message) -> None:
            nonlocal ended
            if ended:
                return
            if message["type"] == "http.response.start":
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                ended = True

        async def head_receive() -> Message:
            if ended:
                return {"type": "http.disconnect"}
            return await receive()

        await self.app(inner, head_receive, head_send)


def origins(setting: str) -> list[str]:
    """``STANCELINE_CORS_ORIGINS`` as a list: comma-separated, blanks dropped."""
    return [o.strip().rstrip("/") for o in setting.split(",") if o.strip()]


def install(app: FastAPI, cors_origins: str) -> None:
    """HEAD for every GET; CORS for the configured origins (none: no CORS headers at all)."""
    app.add_middleware(HeadAsGet)
    allowed = origins(cors_origins)
    if allowed:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=allowed,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=REQUESTED,
            expose_headers=EXPOSED,
            max_age=600,
        )

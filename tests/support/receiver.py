"""Real HTTP receivers in the test's own process: a uvicorn server on a free local port.

``serving`` runs any ASGI app (an OTLP collector, a Pushgateway stand-in);
``WebhookReceiver`` is a webhook endpoint that answers from a script and records every
request as it arrived (raw body, headers, arrival time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from support.running import eventually
from support.service import free_port


@asynccontextmanager
async def serving(app: Any, port: int | None = None) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1 until the block ends; yields the port."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, server.started), bool)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    """``time.monotonic()`` when the request arrived."""


Script = Callable[[Received, int], Response]
"""The answer to a request, given it and how many requests came before it."""


def always(status: int, **headers: str) -> Script:
    return lambda _request, _n: Response(status_code=status, headers=headers)


@dataclass
class WebhookReceiver:
    """Answers ``POST /hook/{name}`` with ``scripts[name]`` (default 200), recording each."""

    scripts: dict[str, Script] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    delay: float = 0.0
    """Seconds each answer takes (a slow receiver: requests stay in flight)."""

    def url(self, name: str = "a") -> str:
        return f"http://127.0.0.1:{self.port}/hook/{name}"

    def to(self, name: str) -> list[Received]:
        return [r for r in self.received if r.path == f"/hook/{name}"]

    async def _hook(self, request: Request) -> Response:
        got = Received(
            request.url.path, dict(request.headers), await request.body(), time.monotonic()
        )
        before = len(self.to(request.path_params["name"]))
        self.received.append(got)
        script = self.scripts.get(request.path_params["name"], always(200))
        if self.delay:
            await asyncio.sleep(self.delay)
        return script(got, before)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook/{name}", self._hook, methods=["POST"])])


@asynccontextmanager
async def webhook_receiver(delay: float = 0.0, **scripts: Script) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(scripts=dict(scripts), delay=delay)
    async with serving(receiver.app()) as port:
        receiver.port = port
        yield receiver

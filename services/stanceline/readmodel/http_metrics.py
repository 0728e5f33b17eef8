"""Request metrics of the read model: a rate, errors and latency per route.

A plain ASGI middleware rather than a library's: it costs one counter and one
histogram sample per request on a path measured in hundreds of microseconds.
Routes are labelled by their template (``/v1/actors/{actor_id}/...``), so the
label set stays bounded whatever clients ask for.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "stanceline_http_requests_total",
    "HTTP requests answered by the read model, by method, route template and status.",
    ["method", "route", "status"],
)
DURATION = Histogram(
    "stanceline_http_request_duration_seconds",
    "Time to answer, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class HttpMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = template(scope)
            method = scope["method"]
            REQUESTS.labels(method, route, str(status)).inc()
            DURATION.labels(method, route).observe(time.perf_counter() - started)


def template(scope: Scope) -> str:
    """The matched route's full template, or ``unmatched``.

    FastAPI puts the route as declared in its router in the scope, so its path
    lacks the prefixes of the routers above it (``/v1``). Those prefixes are
    literal, so they are the request path's leading segments: as many segments as
    the request has beyond the template's.
    """
    declared = getattr(scope.get("route"), "path", None)
    if not isinstance(declared, str):
        return "unmatched"
    extra = scope["path"].count("/") - declared.count("/")
    prefix = "/".join(scope["path"].split("/")[: extra + 1]) if extra > 0 else ""
    return prefix + declared

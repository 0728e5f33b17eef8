"""A standalone projector's own HTTP port: ``/metrics``, ``/healthz`` and ``/readyz``.

``stanceline up`` serves the projector's metrics and readiness on the API. A
projector run on its own (``stanceline projector``, a replica in a container)
has no API, so with ``STANCELINE_METRICS_PORT`` set it serves these three
routes itself, for Prometheus and for liveness and readiness probes.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stanceline.exposition import metrics_endpoint
from stanceline.health import ProjectorHealth

PROBLEM_JSON = "application/problem+json"


def probe_app(health: ProjectorHealth) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        """The process and its event loop are alive."""
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        """Consuming, with Postgres and Redis reachable; otherwise 503 saying which."""
        problem = health.problem
        if problem is None:
            return JSONResponse({"status": "ready"})
        return JSONResponse(
            {
                "type": "about:blank",
                "title": "Not ready",
                "status": 503,
                "detail": problem,
            },
            status_code=503,
            media_type=PROBLEM_JSON,
            headers={"Retry-After": "5"},
        )

    return Starlette(
        routes=[
            Route("/metrics", metrics_endpoint),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ]
    )

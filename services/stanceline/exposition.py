"""The Prometheus exposition every stanceline process serves on ``/metrics``.

One process (``stanceline up``, a projector) serves its default registry.
``stanceline api --workers N`` runs N processes behind one port; each scrape
reaches one of them, so they share their samples through prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by the ``api`` command),
and whichever worker answers serves all of them.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def exposition() -> bytes:
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def metrics_endpoint(_: Request) -> Response:
    """A route, not a mounted app: a mount answers ``/metrics`` with a redirect."""
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

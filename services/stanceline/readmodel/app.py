"""The FastAPI application factory.

The engine is handed in (or built in the lifespan from a URL), never
created at import; ``stanceline up`` passes the projector's health so
``/readyz`` reports an ingest that is stuck retrying. With settings that
carry an admin token, ``/v1/admin`` is mounted and its Redis client is
built in the lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline import heap, telemetry
from stanceline.exposition import metrics_endpoint
from stanceline.health import ProjectorHealth
from stanceline.readmodel import http, problems
from stanceline.readmodel import page as dashboard_page
from stanceline.readmodel.http_metrics import HttpMetrics
from stanceline.readmodel.routes import admin_router, router
from stanceline.redis_client import connect
from stanceline.settings import Settings
from stanceline.store.db import ReadConnection, create_engine, create_read_engine
from stanceline.store.replica import replica_lag_seconds

log = logging.getLogger(__name__)


def create_app(
    *,
    engine: AsyncEngine | None = None,
    database_url: str | None = None,
    projector: ProjectorHealth | None = None,
    settings: Settings | None = None,
    redis_url: str | None = None,
    writer: AsyncEngine | None = None,
) -> FastAPI:
    """``redis_url`` defaults to the settings' (``stanceline up`` passes its embedded one).

    ``writer``: an engine that may write, for the admin routes that do (subscriptions);
    ``stanceline up`` hands in the projector's. Without one, the app makes its own from
    the writer URL, and with no writer URL either (an API that only reads a standby)
    those routes answer 503."""
    token = settings.admin_token if settings is not None else None
    admin = token is not None and token.get_secret_value() != ""
    redis_url = redis_url or (settings.redis_url if settings is not None else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = engine is None
        # Its own engine is read-only (no pre-ping, read-only sessions: store.db); one
        # handed in (``stanceline up`` shares the projector's) is used as it is.
        # STANCELINE_READ_DATABASE_URL, when set, is where this process reads (a standby).
        read_url = settings.read_database_url if settings is not None else None
        app.state.engine = engine or create_read_engine(_required(read_url or database_url))
        # Subscriptions are written through the admin routes: a writer engine, only then.
        url = database_url or (settings.database_url if settings is not None else None)
        writer_owned = admin and writer is None and bool(url)
        app.state.writer = (
            create_engine(_required(url)) if writer_owned else writer if admin else None
        )
        app.state.redis = connect(redis_url) if admin and redis_url else None
        # Everything built so far lives as long as the worker: no collector pass walks it.
        heap.settle()
        try:
            yield
        finally:
            if app.state.redis is not None:
                await app.state.redis.aclose()
            if owned:
                await app.state.engine.dispose()
            if writer_owned:
                await app.state.writer.dispose()

    app = FastAPI(
        title="stanceline",
        version="1",
        summary="Who said what, on which proposition, with which stance, when.",
        lifespan=lifespan,
    )
    app.state.projector = projector
    app.state.settings = settings
    app.state.admin_token = token if admin else None
    problems.install(app)
    app.include_router(router)
    if admin:
        app.include_router(admin_router)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    dashboard_page.mount(app)  # the built-in dashboard at /, outside the schema
    app.add_middleware(HttpMetrics)
    # HEAD wherever GET, and CORS for STANCELINE_CORS_ORIGINS: outside the metrics.
    http.install(app, settings.cors_origins if settings is not None else "")
    if telemetry.enabled():
        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses=problems.documented(503))
    async def readyz(request: Request) -> JSONResponse:
        """Postgres answers, a standby is not too far behind (``replica_lag_seconds``; 0 on
        a primary) and, in-process, the projector is consuming."""
        try:
            async with asyncio.timeout(2):
                async with request.app.state.engine.connect() as conn:
                    _standby, lag = await replica_lag_seconds(ReadConnection(conn))
        except Exception as exc:
            # In words: the driver's text can name hosts, users and SQL.
            log.warning("readiness: the database does not answer (%s)", type(exc).__name__)
            raise problems.NotReady(
                "the database is unreachable; answers resume by themselves when it is back"
            ) from exc
        limit = settings.max_replica_lag_s if settings is not None else Settings().max_replica_lag_s
        if lag > limit:
            raise problems.NotReady(
                f"the standby this API reads is {lag:.0f} s behind its primary, more than"
                f" STANCELINE_MAX_REPLICA_LAG_S ({limit:g} s)"
            )
        health: ProjectorHealth | None = request.app.state.projector
        if health is not None and health.problem is not None:
            raise problems.NotReady(health.problem)
        return JSONResponse({"status": "ready", "replica_lag_seconds": round(lag, 3)})

    return app


def from_environment() -> FastAPI:
    """The app as ``STANCELINE_*`` describes it: the factory each uvicorn worker process
    calls when ``stanceline api --workers N`` runs several."""
    settings = Settings()
    telemetry.configure("stanceline-api")
    return create_app(database_url=settings.database_url, settings=settings)


def _required(url: str | None) -> str:
    if url is None:
        raise RuntimeError("create_app needs an engine or a database_url")
    return url

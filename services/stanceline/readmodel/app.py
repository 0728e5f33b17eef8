"""The FastAPI application factory.

The engine is handed in (or built in the lifespan from a URL), never
created at import; ``stanceline up`` passes the projector's health so
``/readyz`` reports an ingest that is stuck retrying.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.projector.health import ProjectorHealth
from stanceline.readmodel import problems
from stanceline.readmodel.routes import router
from stanceline.store.db import create_engine


def create_app(
    *,
    engine: AsyncEngine | None = None,
    database_url: str | None = None,
    projector: ProjectorHealth | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = engine is None
        app.state.engine = engine or create_engine(_required(database_url))
        try:
            yield
        finally:
            if owned:
                await app.state.engine.dispose()

    app = FastAPI(
        title="stanceline",
        version="1",
        summary="Who said what, on which proposition, with which stance, when.",
        lifespan=lifespan,
    )
    app.state.projector = projector
    problems.install(app)
    app.include_router(router)
    app.mount("/metrics", make_asgi_app())

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses=problems.documented(503))
    async def readyz(request: Request) -> JSONResponse:
        """Postgres answers and, in-process, the projector is consuming."""
        try:
            async with asyncio.timeout(2):
                async with request.app.state.engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            raise problems.NotReady(f"database: {type(exc).__name__}") from exc
        health: ProjectorHealth | None = request.app.state.projector
        if health is not None and not health.ready:
            raise problems.NotReady(f"projector: {health.last_error or 'not consuming'}")
        return JSONResponse({"status": "ready"})

    return app


def _required(url: str | None) -> str:
    if url is None:
        raise RuntimeError("create_app needs an engine or a database_url")
    return url

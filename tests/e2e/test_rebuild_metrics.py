"""A rebuild pushes its progress to a Pushgateway: a real HTTP receiver stands in for it,
reading what prometheus-client's ``push_to_gateway`` sends, as the gateway would."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conftest import founding_lines
from stanceline.projector import pipeline
from stanceline.projector.entries import Entry
from stanceline.settings import Settings
from support.receiver import serving
from support.service import STANCELINE, free_port


class Gateway:
    def __init__(self) -> None:
        self.port = free_port()
        self.pushes: list[tuple[str, dict[str, float]]] = []

    async def push(self, request: Request) -> Response:
        text = (await request.body()).decode()
        values = {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        self.pushes.append((request.url.path, values))
        return Response(status_code=200)


@asynccontextmanager
async def _gateway() -> AsyncIterator[Gateway]:
    gateway = Gateway()
    app = Starlette(routes=[Route("/metrics/job/{job}", gateway.push, methods=["PUT", "POST"])])
    async with serving(app, gateway.port):
        yield gateway


async def test_a_rebuild_pushes_its_progress_and_its_end(
    settings: Settings, engine: AsyncEngine
) -> None:
    lines = founding_lines()
    await pipeline.commit(
        engine, [Entry(f"{n + 1}-0", line) for n, line in enumerate(lines)], stream=None
    )
    async with engine.connect() as conn:
        events = int(await conn.scalar(sa.text("SELECT count(*) FROM events")) or 0)
    async with _gateway() as gateway:
        done = await asyncio.to_thread(
            subprocess.run,
            [str(STANCELINE), "rebuild", "--json"],
            env={
                **os.environ,
                "STANCELINE_DATABASE_URL": settings.database_url or "",
                "STANCELINE_PUSHGATEWAY_URL": f"127.0.0.1:{gateway.port}",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    paths = {path for path, _ in gateway.pushes}
    assert paths == {"/metrics/job/stanceline-rebuild"}
    first, last = gateway.pushes[0][1], gateway.pushes[-1][1]
    assert first["stanceline_rebuild_running"] == 1
    assert last["stanceline_rebuild_running"] == 0
    assert last["stanceline_rebuild_events_applied"] == events
    assert last["stanceline_rebuild_events_target"] == events
    assert last["stanceline_rebuild_last_success_timestamp_seconds"] > 0

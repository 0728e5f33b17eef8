"""Traces leave only when an OTLP endpoint is configured, and reach a real OTLP/HTTP receiver.

The receiver is a small HTTP server in this test that decodes what the OpenTelemetry
exporter posts to ``/v1/traces`` (protobuf), so the spans are read as a collector
would read them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import redis.asyncio as aioredis
import sqlalchemy as sa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conftest import founding_lines
from stanceline.settings import Settings
from support.receiver import serving
from support.running import eventually
from support.service import free_port, projector_process, service_running


class Receiver:
    """Spans posted to it, as (service name, span name, attributes)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, dict[str, object]]] = []
        self.port = free_port()

    async def traces(self, request: Request) -> Response:
        message = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in message.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attributes: dict[str, object] = {
                        a.key: a.value.int_value or a.value.string_value for a in span.attributes
                    }
                    self.spans.append((service, span.name, attributes))
        return Response(status_code=200)


@asynccontextmanager
async def _receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/v1/traces", receiver.traces, methods=["POST"])])
    async with serving(app, receiver.port):
        yield receiver


def _env(settings: Settings) -> dict[str, str]:
    plain = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
    return {
        **dict.fromkeys(plain, ""),
        "STANCELINE_DATABASE_URL": settings.database_url or "",
        "STANCELINE_REDIS_URL": settings.redis_url or "",
        "STANCELINE_STREAM": settings.stream,
        "STANCELINE_GROUP": settings.group,
    }


async def _stored(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT count(*) FROM events")) or 0)


async def test_the_projector_exports_its_commits_to_the_configured_endpoint(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    lines = founding_lines()
    for line in lines:
        await redis_client.xadd(settings.stream, {"event": line})
    async with _receiving() as receiver:
        env = {
            **_env(settings),
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        async with projector_process(env, tmp_path / "traced.log"):
            await eventually(lambda: _stored(engine), lambda n: n == len(lines), within=60)
        # Shutdown flushes what the batch processor still held.
        commits = [s for s in receiver.spans if s[1] == "stanceline.commit"]
        assert {service for service, _, _ in commits} == {"stanceline-projector"}
        assert sum(int(str(a["stanceline.appended"])) for _, _, a in commits) == len(lines)
        # FastStream's own span for each batch it consumed from the stream.
        assert f"{settings.stream} process" in {name for _, name, _ in receiver.spans}, {
            name for _, name, _ in receiver.spans
        }


async def test_without_an_endpoint_nothing_is_exported_and_nothing_complains(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    lines = founding_lines()
    for line in lines:
        await redis_client.xadd(settings.stream, {"event": line})
    async with projector_process(_env(settings), tmp_path / "plain.log") as log:
        await eventually(lambda: _stored(engine), lambda n: n == len(lines), within=60)
    text = await asyncio.to_thread(log.read_text, errors="replace")
    assert "opentelemetry" not in text.lower()
    assert "otlp" not in text.lower()
    assert "Traceback" not in text


async def test_the_api_exports_a_span_per_request_named_by_its_route(
    settings: Settings, tmp_path: Path
) -> None:
    async with _receiving() as receiver:
        env = {
            **_env(settings),
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        async with (
            service_running(["api"], env, tmp_path) as api,
            httpx.AsyncClient(base_url=api.base_url) as http,
        ):
            assert (await http.get("/v1/topics")).status_code == 200
            assert (await http.get("/v1/actors/nobody/topics/t/history")).status_code == 404
            await eventually(
                lambda: asyncio.sleep(0, {name for _, name, _ in receiver.spans}),
                lambda names: (
                    "GET /v1/topics" in names
                    and "GET /v1/actors/{actor_id}/topics/{topic_id}/history" in names
                ),
            )
        services = {service for service, _, _ in receiver.spans}
        assert services == {"stanceline-api"}

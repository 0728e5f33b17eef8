"""HTTP as clients expect it, on every route: Allow on a 405, HEAD wherever GET, CORS when
configured, conditional reads of the feed and of statements, and the requests uvicorn
rejects before the app (a 100,000-character target) still answered as problem+json by a
real ``stanceline api`` process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.readmodel.app import create_app
from stanceline.readmodel.problems import PROBLEM_JSON
from stanceline.settings import Settings
from stanceline.store.records import Accepted
from support.events import parsed, retraction
from support.founding import load_founding
from support.horizon import store_visible
from support.http import serve
from support.service import service_running

US_HISTORY = "/v1/actors/us/topics/us-arms-strikes-inside-russia/history"
STATEMENT = "/v1/statements/2024-05-30.us.white-house.arms-inside-russia"
DASHBOARD = "https://dash.example"
CHANGES = "/v1/changes?include_descendants=true"  # the retraction below rewrites the US roll-up


@pytest.fixture
async def loaded(engine: AsyncEngine) -> AsyncEngine:
    await load_founding(engine)
    return engine


@pytest.fixture
async def http(loaded: AsyncEngine, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, cors_origins=f"{DASHBOARD}, https://b.example")
    async with serve(create_app(engine=loaded, settings=settings)) as client:
        yield client


async def test_a_405_names_the_allowed_methods(http: httpx.AsyncClient) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = await http.request(method, "/v1/changes")
        assert response.status_code == 405, method
        assert response.headers["allow"] == "GET, HEAD"
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["status"] == 405


@pytest.mark.parametrize(
    "url",
    ["/v1/actors", US_HISTORY, "/v1/changes", STATEMENT, "/healthz", "/v1/actors/nobody/stances"],
)
async def test_head_answers_as_get_would_without_a_body(http: httpx.AsyncClient, url: str) -> None:
    get = await http.get(url)
    head = await http.head(url)
    assert head.status_code == get.status_code
    assert head.content == b""
    for name in ("content-type", "content-length", "etag"):
        assert head.headers.get(name) == get.headers.get(name), name


async def test_cors_answers_the_configured_origins_only(http: httpx.AsyncClient) -> None:
    preflight = await http.options(
        "/v1/changes",
        headers={
            "Origin": DASHBOARD,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "if-none-match, last-event-id",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == DASHBOARD
    assert "GET" in preflight.headers["access-control-allow-methods"]

    simple = await http.get("/v1/changes", headers={"Origin": DASHBOARD})
    assert simple.headers["access-control-allow-origin"] == DASHBOARD
    assert "etag" in simple.headers["access-control-expose-headers"].lower()

    stranger = await http.get("/v1/changes", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers


async def test_without_origins_configured_there_are_no_cors_headers(loaded: AsyncEngine) -> None:
    async with serve(create_app(engine=loaded)) as http:
        response = await http.get("/v1/changes", headers={"Origin": DASHBOARD})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers


async def test_changes_and_statements_answer_304_until_they_change(
    http: httpx.AsyncClient, loaded: AsyncEngine
) -> None:
    for url in (CHANGES, STATEMENT):
        first = await http.get(url)
        assert first.status_code == 200
        tag = first.headers["etag"]
        again = await http.get(url, headers={"If-None-Match": f'"other", {tag}'})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)

    before = {url: (await http.get(url)).headers["etag"] for url in (CHANGES, STATEMENT)}
    document = retraction("retract-wh", "2024-05-30.us.white-house.arms-inside-russia")
    await store_visible(loaded, [Accepted(parsed(document), b"{}")])
    for url, tag in before.items():
        changed = await http.get(url, headers={"If-None-Match": tag})
        assert changed.status_code == 200, url
        assert changed.headers["etag"] != tag


async def raw_request(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


async def test_requests_uvicorn_rejects_are_still_problem_json(
    loaded: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    env = {"STANCELINE_DATABASE_URL": database_url}
    async with service_running(["api"], env, tmp_path) as api:
        cases: list[tuple[bytes, int, str]] = [
            # Over what httptools can parse: the server answers, 414.
            (b"/" + b"a" * 100_000, 414, "/problems/uri-too-long"),
            # Long, but parseable: the app answers (no such actor).
            (b"/v1/actors/" + b"a" * 60_000 + b"/stances", 404, "/problems/not-found"),
        ]
        for target, status, kind in cases:
            request = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            code, headers, body = await raw_request(api.base_url, request)
            assert (code, headers["content-type"]) == (status, PROBLEM_JSON), body[:200]
            problem: dict[str, Any] = json.loads(body)
            assert (problem["status"], problem["type"]) == (status, kind)

        code, headers, body = await raw_request(api.base_url, b"NOT HTTP AT ALL\r\n\r\n")
        assert (code, headers["content-type"]) == (400, PROBLEM_JSON)
        assert json.loads(body)["status"] == 400


async def test_the_api_alone_writes_subscriptions_with_a_writer_not_its_read_engine(
    loaded: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    """``stanceline api`` hands the app its read-only engine; the admin routes that write
    (found by schemathesis: a DELETE answered 500, read-only transaction) need their own."""
    env = {"STANCELINE_DATABASE_URL": database_url, "STANCELINE_ADMIN_TOKEN": "t0ken"}
    async with (
        service_running(["api"], env, tmp_path) as api,
        httpx.AsyncClient(base_url=api.base_url, headers={"Authorization": "Bearer t0ken"}) as c,
    ):
        gone = await c.delete("/v1/admin/subscriptions/no_such_subscription")
        assert (gone.status_code, gone.headers["content-type"]) == (404, PROBLEM_JSON)
        assert (await c.get("/v1/admin/subscriptions")).status_code == 200

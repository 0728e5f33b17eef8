"""``/v1/admin`` over HTTP: off without a token, 401 without the right one, read-only data with it.

The app is the one ``stanceline api`` serves (``create_app``), driven in process
through httpx's ASGI transport with its lifespan running, against real Postgres
and Redis filled through the real write path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import founding_lines
from stanceline.ops.status import head_revision
from stanceline.projector import pipeline
from stanceline.projector.entries import Entry
from stanceline.readmodel.app import create_app
from stanceline.settings import Settings
from support.http import serve

TOKEN = "s3cret-admin-token"
PROBLEM_JSON = "application/problem+json"
STATUS = "/v1/admin/status"
DEAD_LETTERS = "/v1/admin/dead-letters"


def admin_settings(settings: Settings, token: str | None = TOKEN) -> Settings:
    return settings.model_copy(update={"admin_token": SecretStr(token) if token else None})


@pytest.fixture
async def admin(
    settings: Settings, engine: AsyncEngine, redis_client: aioredis.Redis
) -> AsyncIterator[httpx.AsyncClient]:
    """The admin API on, with 3 entries waiting on the stream and 3 dead letters."""
    lines = founding_lines()[:3]
    await redis_client.xgroup_create(settings.stream, settings.group, id="0", mkstream=True)
    for line in lines:
        await redis_client.xadd(settings.stream, {"event": line})
    poison = [Entry(f"{n}-0", b"not json") for n in (1, 2)]
    await pipeline.commit(engine, [*poison, Entry("3-0", b"{}")], stream=settings.stream)
    async with serve(create_app(engine=engine, settings=admin_settings(settings))) as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        yield http


async def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    return body


async def test_without_a_token_configured_the_admin_api_is_off(
    settings: Settings, engine: AsyncEngine
) -> None:
    for configured in (None, ""):
        app = create_app(engine=engine, settings=admin_settings(settings, configured))
        async with serve(app) as http:
            for path in (STATUS, DEAD_LETTERS, f"{DEAD_LETTERS}/1"):
                response = await http.get(path, headers={"Authorization": "Bearer anything"})
                await problem(response, 404)
            spec = (await http.get("/openapi.json")).json()
            assert not [p for p in spec["paths"] if p.startswith("/v1/admin")]


async def test_a_missing_or_wrong_token_is_a_401_with_a_bearer_challenge(
    admin: httpx.AsyncClient,
) -> None:
    for headers, error in (
        ({"Authorization": ""}, False),
        ({"Authorization": f"Basic {TOKEN}"}, False),
        ({"Authorization": "Bearer not-the-token"}, True),
        ({"Authorization": f"Bearer {TOKEN}x"}, True),
    ):
        for path in (STATUS, DEAD_LETTERS, f"{DEAD_LETTERS}/1"):
            response = await admin.get(path, headers=headers)
            body = await problem(response, 401)
            challenge = response.headers["www-authenticate"]
            assert challenge.startswith('Bearer realm="stanceline-admin"')
            assert ('error="invalid_token"' in challenge) is error
            assert TOKEN not in response.text
            assert "dead_letters" not in body


async def test_status_with_the_token_reports_lag_dead_letters_and_version(
    admin: httpx.AsyncClient, settings: Settings
) -> None:
    response = await admin.get(STATUS)

    assert response.status_code == 200, response.text
    body = response.json()
    (group,) = body["stream"]["groups"]
    assert (group["name"], group["lag_entries"], group["pending"]) == (settings.group, 3, 0)
    assert body["stream"]["length"] == 3
    assert body["dead_letters"] == {"total": 3, "by_reason": {"entry": 2, "specversion": 1}}
    assert body["store"]["events"] == 0
    assert body["projection"]["revision"] == head_revision()
    assert body["projection"]["rebuilt_at"] is None


async def test_dead_letters_list_filters_pages_and_shows_raw_bytes(
    admin: httpx.AsyncClient,
) -> None:
    first = (await admin.get(DEAD_LETTERS, params={"reason": "entry", "limit": 1})).json()
    assert (first["total"], len(first["dead_letters"])) == (2, 1)
    second = (
        await admin.get(
            DEAD_LETTERS, params={"reason": "entry", "limit": 1, "cursor": first["next_cursor"]}
        )
    ).json()
    assert second["next_cursor"] is None
    entries = [d["stream_entry_id"] for d in first["dead_letters"] + second["dead_letters"]]
    assert entries == ["1-0", "2-0"]
    assert "raw_base64" not in first["dead_letters"][0]
    future = await admin.get(DEAD_LETTERS, params={"since": "2999-01-01T00:00:00Z"})
    assert future.json()["total"] == 0

    detail = (await admin.get(f"{DEAD_LETTERS}/{first['dead_letters'][0]['id']}")).json()
    assert (detail["raw_text"], detail["raw_base64"]) == ("not json", "bm90IGpzb24=")
    assert detail["reason"].startswith("entry is not JSON")

    await problem(await admin.get(f"{DEAD_LETTERS}/999999"), 404)
    await problem(await admin.get(f"{DEAD_LETTERS}/nope"), 400)
    for params in ({"cursor": "garbage"}, {"since": "yesterday"}, {"reason": "a b"}):
        await problem(await admin.get(DEAD_LETTERS, params=params), 400)


async def test_admin_routes_are_documented_with_their_problems_and_auth(
    admin: httpx.AsyncClient,
) -> None:
    spec = (await admin.get("/openapi.json")).json()

    admin_paths = {p: item for p, item in spec["paths"].items() if p.startswith("/v1/admin")}
    subscriptions = "/v1/admin/subscriptions"
    assert set(admin_paths) == {
        STATUS,
        DEAD_LETTERS,
        DEAD_LETTERS + "/{dead_letter_id}",
        subscriptions,
        subscriptions + "/{subscription_id}",
        subscriptions + "/{subscription_id}/deliveries",
        subscriptions + "/{subscription_id}/replay",
    }
    for item in admin_paths.values():
        for operation in item.values():
            assert operation["security"] == [{"AdminToken": []}]
            assert PROBLEM_JSON in operation["responses"]["401"]["content"]
            assert "422" not in operation["responses"]
    assert spec["components"]["securitySchemes"]["AdminToken"]["scheme"] == "bearer"
    # Only subscriptions change data over HTTP; redrive and rebuild stay on the CLI.
    writes = [p for p, item in spec["paths"].items() if "post" in item or "delete" in item]
    assert all(p.startswith(subscriptions) for p in writes)


async def test_status_is_503_without_redis_and_when_redis_is_unreachable(
    settings: Settings, engine: AsyncEngine
) -> None:
    no_redis = admin_settings(settings).model_copy(update={"redis_url": None})
    unreachable = admin_settings(settings).model_copy(
        update={"redis_url": "redis://someone:s3cret@127.0.0.1:1/0"}
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for configured, detail in (
        (no_redis, "STANCELINE_REDIS_URL"),
        (unreachable, "Redis is unreachable"),
    ):
        async with serve(create_app(engine=engine, settings=configured)) as http:
            body = await problem(await http.get(STATUS, headers=auth), 503)
            assert detail in body["detail"]
            # In words, never the driver's text: no host, user or password.
            assert "127.0.0.1" not in str(body)
            assert "s3cret" not in str(body)
            assert (await http.get(DEAD_LETTERS, headers=auth)).status_code == 200

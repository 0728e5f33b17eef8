"""Flip alerts end to end in one process: the admin API subscribes a real local receiver,
the real write path fills the outbox, the real dispatcher sends, and every request is
verified with the ``standardwebhooks`` package (a verifier no one here wrote)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook
from starlette.responses import Response

from conftest import founding_lines
from stanceline.dispatcher.worker import Dispatcher
from stanceline.domain.projection import project
from stanceline.domain.stance import Change
from stanceline.ops import rebuild as rebuilding
from stanceline.ops import replay as replaying
from stanceline.projector import pipeline
from stanceline.projector.entries import Entry
from stanceline.readmodel.app import create_app
from stanceline.settings import Settings
from stanceline.store.translate import fact_of
from support.events import actor, parsed, raw, statement
from support.http import serve
from support.receiver import Received, Script, WebhookReceiver, always, webhook_receiver
from support.running import eventually

TOKEN = "webhook-admin-token"
SUBSCRIPTIONS = "/v1/admin/subscriptions"
ARMS = "us-arms-strikes-inside-russia"


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "admin_token": SecretStr(TOKEN),
            "webhook_allow_private": True,
            "webhook_retry_schedule": "0,1,1,2",
            "webhook_poll_s": 0.05,
            "webhook_workers": 2,
        }
    )


@pytest.fixture
async def admin(hook_settings: Settings, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """The admin API, with actor ``x`` known (a subscription names known actors only)."""
    await write(engine, actor("actor-x", "x"))
    async with serve(create_app(engine=engine, settings=hook_settings)) as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        yield http


@asynccontextmanager
async def dispatching(settings: Settings, engine: AsyncEngine) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(Dispatcher(settings, engine).run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def subscribe(admin: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    answer = await admin.post(SUBSCRIPTIONS, json={"url": url, **fields})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    assert body["secret"].startswith("whsec_")
    return body


async def write(engine: AsyncEngine, *documents: dict[str, Any]) -> None:
    entries = [Entry(f"{n + 1}-0", raw(d)) for n, d in enumerate(documents)]
    await pipeline.commit(engine, entries, stream="webhook-test")


def verified(secret: str, request: Received) -> dict[str, Any]:
    """The body, once ``standardwebhooks`` has checked its signature (raises if wrong)."""
    body: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return body


async def arrived(receiver: WebhookReceiver, name: str, count: int) -> list[Received]:
    async def seen() -> list[Received]:
        return receiver.to(name)

    return await eventually(seen, lambda r: len(r) >= count, within=30)


def _failing(times: int, status: int, **headers: str) -> Script:
    def answer(_request: Received, before: int) -> Response:
        return Response(status_code=status if before < times else 200, headers=headers)

    return answer


async def test_a_flip_is_signed_and_retried_under_one_id_until_a_2xx(
    admin: httpx.AsyncClient, hook_settings: Settings, engine: AsyncEngine
) -> None:
    async with webhook_receiver(a=_failing(2, 500)) as receiver:
        sub = await subscribe(admin, receiver.url("a"), actors=["x"])
        await write(
            engine,
            statement("e1", "s1", "x", "t", "oppose", "2024-01-01T00:00:00Z"),
            statement("e2", "s2", "x", "t", "support", "2024-02-01T00:00:00Z"),
        )
        async with dispatching(hook_settings, engine):
            requests = await arrived(receiver, "a", 3)
            log = await eventually(
                lambda: admin.get(f"{SUBSCRIPTIONS}/{sub['id']}/deliveries"),
                lambda r: r.json()["deliveries"][0]["state"] == "delivered",
            )
    assert len(requests) == 3
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    bodies = [verified(sub["secret"], r) for r in requests]
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["type"] == "stance.flipped"
    data = bodies[0]["data"]
    assert (data["actor_id"], data["topic_id"], data["statement_id"]) == ("x", "t", "s2")
    assert (data["stance"], data["previous_stance"]) == ("support", "oppose")
    assert data["change"] == "flip"
    assert data["said_at"] == "2024-02-01T00:00:00Z"
    assert (data["subscription_id"], data["sequence"], data["include_descendants"]) == (
        sub["id"],
        1,
        False,
    )
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43).verify(requests[0].body, requests[0].headers)
    [delivery] = log.json()["deliveries"]
    assert delivery["webhook_id"] == requests[0].headers["webhook-id"]
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    # The schedule was 0, 1, 1: the retries came no sooner than a second apart.
    assert requests[1].at - requests[0].at >= 0.95
    assert requests[2].at - requests[1].at >= 0.95


async def test_retry_after_on_429_is_honoured(
    admin: httpx.AsyncClient, hook_settings: Settings, engine: AsyncEngine
) -> None:
    eager = hook_settings.model_copy(update={"webhook_retry_schedule": "0,0,0,0"})
    async with webhook_receiver(a=_failing(1, 429, **{"Retry-After": "1"})) as receiver:
        await subscribe(admin, receiver.url("a"), actors=["x"])
        await write(
            engine,
            statement("e1", "s1", "x", "t", "oppose", "2024-01-01T00:00:00Z"),
            statement("e2", "s2", "x", "t", "support", "2024-02-01T00:00:00Z"),
        )
        async with dispatching(eager, engine):
            first, second = await arrived(receiver, "a", 2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.at - first.at >= 1.0


async def test_a_late_statement_that_undoes_a_flip_sends_its_withdrawal(
    admin: httpx.AsyncClient, hook_settings: Settings, engine: AsyncEngine
) -> None:
    async with webhook_receiver() as receiver:
        sub = await subscribe(admin, receiver.url("a"), actors=["x"], kinds=["flip", "withdrawn"])
        await write(
            engine,
            statement("e1", "s1", "x", "t", "oppose", "2024-01-01T00:00:00Z"),
            statement("e3", "s3", "x", "t", "support", "2024-03-01T00:00:00Z"),
        )
        async with dispatching(hook_settings, engine):
            await arrived(receiver, "a", 1)
            # Said in February, recorded late: March's support is no flip any more.
            await write(engine, statement("e2", "s2", "x", "t", "support", "2024-02-01T00:00:00Z"))
            requests = await arrived(receiver, "a", 3)
    bodies = [verified(sub["secret"], r) for r in requests]
    seen = [(b["type"], b["data"]["statement_id"]) for b in bodies]
    assert seen == [
        ("stance.flipped", "s3"),
        ("stance.withdrawn", "s3"),
        ("stance.flipped", "s2"),
    ]
    ids = [r.headers["webhook-id"] for r in requests]
    assert len(set(ids)) == 3
    assert [b["data"]["sequence"] for b in bodies] == [1, 2, 3]


def _expected_us_changes() -> set[tuple[str, str, str]]:
    """The founding example's changes of the US as a whole, from the pure fold."""
    projection = project(fact_of(parsed(line)) for line in founding_lines())
    return {
        (topic, p.statement_id, p.change.value)
        for topic in projection.topics
        for p in projection.history("us", topic, True)
        if p.change is not Change.NONE
    }


async def _founding_delivered(
    admin: httpx.AsyncClient,
    settings: Settings,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    receiver: WebhookReceiver,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    # The catalogue first (a subscription names known actors), then every statement.
    documents = [json.loads(line) for line in founding_lines()]
    await write(engine, *[d for d in documents if d["type"].endswith(".registered.v1")])
    sub = await subscribe(
        admin, receiver.url("us"), actors=["us"], include_descendants=True, kinds=["flip", "change"]
    )
    for line in founding_lines():
        await redis_client.xadd(settings.stream, {"event": line})
    await replaying.replay(engine, redis_client, settings.stream)
    expected = _expected_us_changes()
    async with dispatching(settings, engine):
        requests = await arrived(receiver, "us", len(expected))
        await asyncio.sleep(0.5)  # and nothing more
    bodies = [verified(sub["secret"], r) for r in receiver.to("us")]
    assert len(bodies) == len(requests)
    return sub, bodies


async def test_a_subscription_on_us_with_descendants_gets_the_us_changes_only(
    admin: httpx.AsyncClient,
    hook_settings: Settings,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
) -> None:
    async with webhook_receiver() as receiver:
        _, bodies = await _founding_delivered(admin, hook_settings, engine, redis_client, receiver)
    got = {(b["data"]["topic_id"], b["data"]["statement_id"], b["data"]["change"]) for b in bodies}
    expected = _expected_us_changes()
    assert len(expected) == 3  # oppose → neutral → support on arms; a shift on vehicles
    assert got == expected
    assert len(bodies) == len(expected)
    assert {(b["data"]["actor_id"], b["data"]["include_descendants"]) for b in bodies} == {
        ("us", True)
    }
    assert not [b for b in bodies if "ru" in json.dumps(b["data"]).split('"')]


async def test_a_rebuild_and_a_replay_send_nothing_new(
    admin: httpx.AsyncClient,
    hook_settings: Settings,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
) -> None:
    async with webhook_receiver() as receiver:
        _, bodies = await _founding_delivered(admin, hook_settings, engine, redis_client, receiver)
        before = await _outbox_rows(engine)
        again = await replaying.replay(engine, redis_client, hook_settings.stream)
        assert again.new == 0
        assert again.duplicates > 0
        await rebuilding.rebuild(engine)
        async with dispatching(hook_settings, engine):
            await asyncio.sleep(1.5)
        assert len(receiver.to("us")) == len(bodies)
        assert await _outbox_rows(engine) == before


async def _outbox_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT count(*) FROM webhook_outbox")) or 0)


async def test_replay_resends_under_the_same_ids(
    admin: httpx.AsyncClient, hook_settings: Settings, engine: AsyncEngine
) -> None:
    await write(
        engine,
        statement("e1", "s1", "x", "t", "oppose", "2024-01-01T00:00:00Z"),
        statement("e2", "s2", "x", "t", "support", "2024-02-01T00:00:00Z"),
    )
    async with webhook_receiver() as receiver:
        # Subscribed after the flip was recorded: only a replay sends it.
        sub = await subscribe(admin, receiver.url("a"), actors=["x"])
        replay = f"{SUBSCRIPTIONS}/{sub['id']}/replay"
        async with dispatching(hook_settings, engine):
            for _ in range(2):
                answer = await admin.post(replay, json={"since": "2000-01-01T00:00:00Z"})
                assert answer.status_code == 202
                assert answer.json() == {"queued": 1}
                await arrived(receiver, "a", len(receiver.to("a")) + 1)
    first, second = receiver.to("a")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert verified(sub["secret"], first) == verified(sub["secret"], second)


async def test_bad_subscriptions_are_documented_problems(
    admin: httpx.AsyncClient, hook_settings: Settings, engine: AsyncEngine
) -> None:
    await write(engine, statement("e1", "s1", "x", "t", "oppose", "2024-01-01T00:00:00Z"))
    for fields, name in (
        ({"url": "ftp://example.org/hook"}, "url"),
        ({"url": "/relative"}, "url"),
        ({"url": "http://127.0.0.1:9/hook", "kinds": ["flips"]}, "kinds"),
        ({"url": "http://127.0.0.1:9/hook", "actors": ["nobody"]}, "actors"),
        ({"url": "http://127.0.0.1:9/hook", "topics": ["nothing"]}, "topics"),
    ):
        answer = await admin.post(SUBSCRIPTIONS, json=fields)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert [p["name"] for p in answer.json()["invalid-params"]] == [name]
    strict = hook_settings.model_copy(update={"webhook_allow_private": False})
    async with serve(create_app(engine=engine, settings=strict)) as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/"):
            answer = await http.post(SUBSCRIPTIONS, json={"url": url})
            assert answer.status_code == 400, answer.text
            assert "private" in answer.json()["detail"]
    missing = f"{SUBSCRIPTIONS}/sub_missing"
    assert (await admin.get(missing)).status_code == 404
    assert (await admin.delete(missing)).status_code == 404
    assert (await admin.get(f"{missing}/deliveries")).status_code == 404
    made = await subscribe(admin, "http://127.0.0.1:9/hook", kinds=["change", "withdrawn"])
    listed = (await admin.get(SUBSCRIPTIONS)).json()["subscriptions"]
    assert [(s["id"], s["state"], "secret" in s) for s in listed] == [(made["id"], "active", False)]
    assert (await admin.delete(f"{SUBSCRIPTIONS}/{made['id']}")).status_code == 204
    assert (await admin.get(f"{SUBSCRIPTIONS}/{made['id']}")).status_code == 404


async def test_410_disables_the_subscription(
    admin: httpx.AsyncClient, hook_settings: Settings, engine: AsyncEngine
) -> None:
    async with webhook_receiver(a=always(410)) as receiver:
        sub = await subscribe(admin, receiver.url("a"), actors=["x"])
        await write(
            engine,
            statement("e1", "s1", "x", "t", "oppose", "2024-01-01T00:00:00Z"),
            statement("e2", "s2", "x", "t", "support", "2024-02-01T00:00:00Z"),
        )
        async with dispatching(hook_settings, engine):
            shown = await eventually(
                lambda: admin.get(f"{SUBSCRIPTIONS}/{sub['id']}"),
                lambda r: r.json()["state"] == "disabled",
            )
    assert "410" in shown.json()["disabled_reason"]
    assert len(receiver.to("a")) == 1


async def test_an_api_without_a_writer_url_refuses_subscription_writes_with_a_503(
    hook_settings: Settings, database_url: str
) -> None:
    """An API that only reads (a standby, STANCELINE_DATABASE_URL unset) starts, serves
    the admin routes that read, and answers the subscription routes 503 problem+json."""
    reader_only = hook_settings.model_copy(
        update={"database_url": None, "read_database_url": database_url}
    )
    async with serve(create_app(settings=reader_only)) as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        refused = await http.post(SUBSCRIPTIONS, json={"url": "http://127.0.0.1:9/hook"})
        listed = await http.get(SUBSCRIPTIONS)
        status = await http.get("/v1/admin/status")
    for answer in (refused, listed):
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert "STANCELINE_DATABASE_URL" in answer.json()["detail"]
    assert status.status_code == 200, status.text

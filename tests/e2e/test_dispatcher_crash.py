"""``stanceline dispatcher`` killed with SIGKILL mid-delivery, then started again: every
watched change reaches the receiver at least once, and no change under two ids."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from stanceline.ops import subscriptions
from stanceline.projector import pipeline
from stanceline.projector.entries import Entry
from stanceline.settings import Settings
from support.events import actor, raw, statement
from support.receiver import webhook_receiver
from support.running import eventually
from support.service import STANCELINE

SERIES = 6
FLIPS = 4


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "STANCELINE_DATABASE_URL": settings.database_url or "",
        "STANCELINE_WEBHOOK_ALLOW_PRIVATE": "true",
        "STANCELINE_WEBHOOK_RETRY_SCHEDULE": "0,1,1,1,1,1",
        "STANCELINE_WEBHOOK_POLL_S": "0.05",
        "STANCELINE_WEBHOOK_BATCH": "3",
    }


async def _dispatcher(settings: Settings, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            str(STANCELINE),
            "dispatcher",
            env=_env(settings),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


async def test_kill_9_mid_delivery_then_restart_loses_nothing_and_keeps_one_id_per_change(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    # SERIES actors, each flipping FLIPS times on one topic: SERIES * FLIPS flips.
    documents = [actor(f"a{n}", f"x{n}") for n in range(SERIES)]
    for n in range(SERIES):
        for k in range(FLIPS + 1):
            stance = "support" if k % 2 else "oppose"
            said = f"2024-01-{k + 1:02d}T00:00:00Z"
            documents.append(statement(f"e{n}-{k}", f"s{n}-{k}", f"x{n}", "t", stance, said))
    registrations = [Entry(f"{i + 1}-0", raw(d)) for i, d in enumerate(documents[:SERIES])]
    await pipeline.commit(engine, registrations, stream="crash")
    log = tmp_path / "dispatcher.log"
    async with webhook_receiver(delay=0.3) as receiver:
        sub = await subscriptions.subscribe(
            engine,
            receiver.url("a"),
            actors=[f"x{n}" for n in range(SERIES)],
            allow_private=True,
        )
        statements = [Entry(f"{i + 100}-0", raw(d)) for i, d in enumerate(documents[SERIES:])]
        await pipeline.commit(engine, statements, stream="crash")
        async with engine.connect() as conn:
            expected = set(
                await conn.scalars(
                    sa.text("SELECT change_id FROM webhook_outbox WHERE subscription_id = :s"),
                    {"s": sub.id},
                )
            )
        assert len(expected) == SERIES * FLIPS

        first = await _dispatcher(settings, log)
        try:
            # Requests in flight (the receiver answers after 0.3 s): kill it mid-delivery.
            await eventually(lambda: asyncio.sleep(0, len(receiver.to("a"))), lambda n: n >= 4)
            await asyncio.sleep(0.1)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        before_restart = len(receiver.to("a"))
        assert before_restart < len(expected)

        second = await _dispatcher(settings, log)
        try:

            async def ids_by_change() -> dict[tuple[str, int], set[str]]:
                """Each change (its series and number there) with the ids it came under."""
                seen: dict[tuple[str, int], set[str]] = {}
                for request in receiver.to("a"):
                    data = Webhook(sub.secret).verify(request.body, request.headers)["data"]
                    key = (data["actor_id"], data["sequence"])
                    seen.setdefault(key, set()).add(request.headers["webhook-id"])
                return seen

            seen = await eventually(ids_by_change, lambda s: len(s) == len(expected), within=60)
        finally:
            second.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(second.wait(), 60) == 0, log.read_text()

    assert all(len(ids) == 1 for ids in seen.values())
    assert len({i for ids in seen.values() for i in ids}) == len(expected)
    async with engine.connect() as conn:
        states = list(await conn.scalars(sa.text("SELECT DISTINCT state FROM webhook_outbox")))
    assert states == ["delivered"]

"""Running a real projector inside a test, and waiting for what it should do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.projector.consumer import Projector
from stanceline.settings import Settings


@asynccontextmanager
async def projector_running(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Projector]:
    stop = asyncio.Event()
    projector = Projector(settings, engine, settings.redis_url or "")
    task = asyncio.create_task(projector.run(stop))
    try:
        yield projector
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], *, within: float = 15.0
) -> T:
    """Poll until ``ok(probe())``; fail with the last value seen."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if ok(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s; last value: {value!r}")
        await asyncio.sleep(0.05)

"""For the analysts' tests (networks, exports): data through the real write path, extra
scratch databases from the migrated template, and the founding example's ids."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import _admin, founding_lines
from fixtures.servers import PostgresServer
from stanceline.readmodel.app import create_app
from stanceline.store.db import create_engine, writing
from stanceline.store.ingest import store_batch
from stanceline.store.records import Accepted
from support.events import parsed, raw
from support.http import serve

ARMS = "us-arms-strikes-inside-russia"
VEHICLES = "us-vehicles-used-in-belgorod-raid"
RAID = "ukraine-behind-belgorod-raid"
TOPICS = f"{ARMS},{VEHICLES},{RAID}"

KIRBY_ARMS = "2023-05-24.us.nsc.arms-inside-russia"
WH_LIMITED = "2024-05-30.us.white-house.arms-inside-russia"
WH_SUPPORT = "2024-11-17.us.white-house.arms-inside-russia"
NSC_VEHICLES = "2023-05-24.us.nsc.us-vehicles-in-belgorod"
DOD_VEHICLES = "2023-05-23.us.dod.us-vehicles-in-belgorod"


def founding_documents() -> list[bytes]:
    return founding_lines()


async def store(engine: AsyncEngine, documents: Sequence[dict[str, Any] | bytes]) -> None:
    """One batch, one transaction, as the projector stores a batch."""
    items = [Accepted(parsed(d), d if isinstance(d, bytes) else raw(d)) for d in documents]
    async with writing(engine) as conn:
        report = await store_batch(conn, items)
    assert (report.appended, report.dead_lettered) == (len(items), 0), report


@asynccontextmanager
async def scratch_engine(server: PostgresServer, template: str) -> AsyncIterator[AsyncEngine]:
    """One more migrated database, dropped afterwards (for comparing several loads)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    await _admin(server, f"CREATE DATABASE {name} TEMPLATE {template}")
    engine = create_engine(server.url_for(name))
    try:
        yield engine
    finally:
        await engine.dispose()
        await _admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@asynccontextmanager
async def api(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(engine=engine)) as http:
        yield http

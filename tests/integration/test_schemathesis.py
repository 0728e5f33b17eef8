"""Schemathesis against a real ``stanceline api`` process on a real database holding the
founding example (and a dead letter, so the admin routes have something to show).

Every operation of the served document, the admin ones with the token and ``/v1/stream``
(each stream ends after half a second, ``STANCELINE_STREAM_MAX_SECONDS``, so a read of
it is bounded), with positive and negative inputs, through all four phases and every
check but one: no 5xx, no request left unanswered (a timeout fails the run), no status,
content type, header or body outside what the document says, 405 with ``Allow`` for
undocumented methods, 401 without the token.

The check left out, ``positive_data_acceptance``, expects every value the JSON Schema
allows to be accepted. Some parameters are checked beyond what a JSON Schema can say (an
opaque cursor, an RFC 3339 moment, a list of ids, a receiver URL that must be public),
and a value that fails that check is a documented 400 problem+json: the answer the
house rules ask for, which that check would count as a failure.

The default run is short (``STANCELINE_SCHEMATHESIS_EXAMPLES``, 8 cases per operation
and phase); ``.ci/run`` runs it again with more.
"""

from __future__ import annotations

import asyncio
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.store.db import writing
from stanceline.store.ingest import store_batch
from stanceline.store.records import Rejected
from support.founding import load_founding
from support.service import service_running

if TYPE_CHECKING:
    from fixtures.servers import RedisServer

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES = int(os.environ.get("STANCELINE_SCHEMATHESIS_EXAMPLES", "8"))
SEED = os.environ.get("STANCELINE_SCHEMATHESIS_SEED", "15")
TOKEN = "schemathesis-admin-token"


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    engine: AsyncEngine, database_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    await load_founding(engine)
    async with writing(engine) as conn:
        await store_batch(conn, [], [Rejected(b"not json", "not JSON", "entry", "1-0")])
    env = {
        "STANCELINE_DATABASE_URL": database_url,
        "STANCELINE_REDIS_URL": redis_server.url,
        "STANCELINE_STREAM": f"schemathesis:{tmp_path.name}",
        "STANCELINE_ADMIN_TOKEN": TOKEN,
        "STANCELINE_STREAM_MAX_SECONDS": "0.5",
        "STANCELINE_STREAM_PING_SECONDS": "0.2",
    }
    junit = tmp_path / "schemathesis.xml"
    async with service_running(["api"], env, tmp_path) as api:
        process = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "run",
            f"{api.base_url}/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            SEED,
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(junit),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        output, _ = await process.communicate()
        log = api.output()
    report = output.decode(errors="replace")
    assert process.returncode == 0, f"{report[-12_000:]}\n--- api log ---\n{log[-4_000:]}"

    suites = ET.parse(junit).getroot()
    cases = suites.findall(".//testcase")
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    errored = [c.get("name") for c in cases if c.find("error") is not None]
    assert (failed, errored) == ([], [])
    tested = {c.get("name") for c in cases}
    assert {"GET /v1/stream", "GET /v1/admin/status", "GET /v1/changes"} <= tested, tested
    assert "Traceback" not in log, log[-4_000:]

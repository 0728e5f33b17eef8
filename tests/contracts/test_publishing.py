"""The publishing guide's examples, run as written, reach a running projector.

Each example is taken out of docs/publishing.md (the fenced block whose first
line names its file), run against the test Redis with the stream in
STANCELINE_STREAM, and its statement must show up projected in Postgres with
no dead letter. So the guide cannot drift from what works: an edit that breaks
an example fails here. The Node.js example runs with the npm `redis` client
that .ci/run installs into tests/contracts/node_modules.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.settings import Settings
from support.running import eventually, projector_running

HERE = Path(__file__).resolve().parent
GUIDE = HERE.parents[1] / "docs" / "publishing.md"
NODE_REDIS = HERE / "node_modules" / "redis" / "package.json"

_BLOCK = re.compile(
    r"^```\w+\n(?P<first>(?:#|//) (?P<name>publish\S*)\n)(?P<code>.*?)^```$", re.M | re.S
)
EXAMPLES = {
    match["name"]: match["first"] + match["code"] for match in _BLOCK.finditer(GUIDE.read_text())
}


def test_the_guide_has_every_example() -> None:
    assert set(EXAMPLES) == {
        "publish.sh",
        "publish_redis.py",
        "publish_cloudevents.py",
        "publish.mjs",
    }


def _command(name: str, code: str, tmp_path: Path) -> tuple[list[str], bytes | None, Path | None]:
    """(argv, standard input, working directory) that run the example as a reader would."""
    if name.endswith(".sh"):
        if shutil.which("redis-cli") is None:
            pytest.skip("redis-cli is not on PATH")
        return ["bash", "-euo", "pipefail", "-c", code], None, None
    if name.endswith(".py"):
        script = tmp_path / name
        script.write_text(code)
        return [sys.executable, str(script)], None, None
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    if not NODE_REDIS.exists():
        pytest.skip(
            "the npm redis client is not installed: run "
            "`npm install --prefix tests/contracts --ignore-scripts` (.ci/run does)"
        )
    # An ES module read from standard input resolves `import 'redis'` from the working
    # directory, which is where node_modules is.
    return [node, "--input-type=module"], code.encode(), HERE


async def _rows(engine: AsyncEngine, sql: str, **params: str) -> list[sa.Row[tuple[str, ...]]]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.text(sql), params)).all())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
async def test_example_is_projected(
    name: str, settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    code = EXAMPLES[name]
    (statement_id,) = re.findall(r"""statement_id["']?:\s*["']([^"']+)""", code)
    argv, stdin, cwd = _command(name, code, tmp_path)
    environment = {
        **os.environ,
        "STANCELINE_REDIS_URL": settings.redis_url or "",
        "STANCELINE_STREAM": settings.stream,
    }

    async with projector_running(settings, engine):
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=environment,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
        assert process.returncode == 0, err.decode()
        assert re.fullmatch(r"[0-9]+-[0-9]+\n", out.decode()), out.decode()

        projected = await eventually(
            lambda: _rows(
                engine,
                "SELECT statement_id, actor_id, stance FROM statements WHERE statement_id = :id",
                id=statement_id,
            ),
            lambda rows: len(rows) == 1,
        )

    assert tuple(projected[0]) == (statement_id, "us.dod", "support")
    assert await _rows(engine, "SELECT reason FROM dead_letters") == []

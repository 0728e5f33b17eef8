"""The publishing guide's shard rule, in Python and Node.js, routes as stanceline does.

Both fenced blocks (``# shard.py``, ``// shard.mjs``) are taken out of docs/publishing.md
as written, given every valid example event and the founding example, and must name the
same stream key as `contract.shards.route` for every shard count.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import founding_lines
from stanceline.contract.shards import MAX_SHARDS, route

HERE = Path(__file__).resolve().parent
GUIDE = HERE.parents[1] / "docs" / "publishing.md"
EXAMPLES = HERE.parents[1] / "contracts" / "examples"

_BLOCK = re.compile(r"^```\w+\n(?:#|//) (?P<name>shard\.\w+)\n(?P<code>.*?)^```$", re.M | re.S)
BLOCKS = {m["name"]: m["code"] for m in _BLOCK.finditer(GUIDE.read_text())}
STREAM = "stanceline:statements"
COUNTS = (1, 2, 3, 4, 8, MAX_SHARDS)


def _events() -> list[bytes]:
    lines = list(founding_lines())
    for path in sorted(EXAMPLES.glob("*.jsonl")):
        lines += [line for line in path.read_bytes().splitlines() if line.strip()]
    return lines


def _expected(lines: list[bytes]) -> list[list[str]]:
    return [[route(STREAM, n, line) for n in COUNTS] for line in lines]


def test_the_guide_has_both_shard_examples() -> None:
    assert set(BLOCKS) == {"shard.py", "shard.mjs"}


def test_the_python_rule_routes_as_stanceline_does() -> None:
    scope: dict[str, Any] = {}
    exec(BLOCKS["shard.py"], scope)
    lines = _events()
    got = [[scope["stream_key"](STREAM, n, json.loads(line)) for n in COUNTS] for line in lines]
    assert got == _expected(lines)
    # The examples name enough actors to reach every one of the 16 shards' keys or most.
    assert len({row[-1] for row in got}) > MAX_SHARDS // 2


def test_the_node_rule_routes_as_stanceline_does(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    module = tmp_path / "shard.mjs"
    module.write_text(BLOCKS["shard.mjs"])
    lines = _events()
    (tmp_path / "events.json").write_text(json.dumps([json.loads(line) for line in lines]))
    runner = tmp_path / "run.mjs"
    runner.write_text(
        "import { readFileSync } from 'node:fs';\n"
        "import { streamKey } from './shard.mjs';\n"
        "const events = JSON.parse(readFileSync(new URL('./events.json', import.meta.url)));\n"
        f"const counts = {json.dumps(list(COUNTS))};\n"
        f"const stream = {json.dumps(STREAM)};\n"
        "const rows = events.map((e) => counts.map((n) => streamKey(stream, n, e)));\n"
        "console.log(JSON.stringify(rows));\n"
    )
    answer = subprocess.run([node, str(runner)], capture_output=True, text=True, check=True)
    assert json.loads(answer.stdout) == _expected(lines)

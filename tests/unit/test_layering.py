"""The read model stands apart from the write path: loading it loads no projector, no ingest.

Each check runs in a fresh interpreter, so modules other tests imported cannot hide
or fake a dependency. An import hook records, for each write-path module that gets
loaded, the chain of stanceline files whose imports pulled it in, so a failure
names the import to cut.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

PROBE = r"""
import importlib.abc, json, os, sys, traceback

FORBIDDEN = ("stanceline.projector", "stanceline.store.ingest")
PACKAGE = os.sep + "stanceline" + os.sep
chains = {}


class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.startswith(FORBIDDEN) and name not in chains:
            chains[name] = [
                f"{frame.filename.rsplit(PACKAGE, 1)[-1]}:{frame.lineno}"
                for frame in traceback.extract_stack()[:-1]
                if PACKAGE in frame.filename
            ]
        return None


sys.meta_path.insert(0, Watch())
if STUB_ROUTES:
    import types
    from fastapi import APIRouter

    routes = types.ModuleType("stanceline.readmodel.routes")
    routes.router, routes.admin_router = APIRouter(), APIRouter()
    sys.modules["stanceline.readmodel.routes"] = routes

from stanceline.readmodel.app import create_app
from stanceline.settings import Settings

# Building the app connects to nothing: the engine and Redis client come in its lifespan.
create_app(database_url="postgresql://nobody@127.0.0.1:1/none")
create_app(
    database_url="postgresql://nobody@127.0.0.1:1/none",
    settings=Settings(admin_token="token", redis_url="redis://127.0.0.1:1"),
)
print(json.dumps({"loaded": sorted(sys.modules), "chains": chains}))
"""


def _load_read_model(*, stub_routes: bool) -> dict[str, Any]:
    code = f"STUB_ROUTES = {stub_routes!r}\n{PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def _under(loaded: list[str], package: str) -> list[str]:
    return [m for m in loaded if m == package or m.startswith(package + ".")]


def _explain(result: dict[str, Any]) -> str:
    return "\n".join(f"{name} <- {' -> '.join(chain)}" for name, chain in result["chains"].items())


def test_the_app_module_itself_loads_nothing_of_the_write_path() -> None:
    """app.py and what it imports besides the routes (health, problems, settings, db)."""
    result = _load_read_model(stub_routes=True)
    assert "stanceline.health" in result["loaded"]
    assert _under(result["loaded"], "stanceline.projector") == [], _explain(result)
    assert _under(result["loaded"], "stanceline.store.ingest") == [], _explain(result)


def test_the_read_model_loads_nothing_of_the_projector() -> None:
    result = _load_read_model(stub_routes=False)
    assert _under(result["loaded"], "stanceline.projector") == [], _explain(result)


def test_the_read_model_loads_nothing_of_the_ingest_path() -> None:
    result = _load_read_model(stub_routes=False)
    assert _under(result["loaded"], "stanceline.store.ingest") == [], _explain(result)

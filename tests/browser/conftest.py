"""The dashboard in a real browser: Debian's ``chromium`` driven by Playwright for Python.

Playwright never downloads a browser here: it launches the system Chromium by path. On
a machine without it these tests skip and say why; ``.ci/run`` installs the package and
sets ``STANCELINE_BROWSER_TESTS=required``, which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, ConsoleMessage, Dialog, Page, async_playwright

from conftest import founding_lines
from stanceline.settings import Settings
from support.running import eventually
from support.service import service_running

TOPIC = "us-arms-strikes-inside-russia"
US_HISTORY = f"/v1/actors/us/topics/{TOPIC}/history?include_descendants=true"


def chromium_path() -> str | None:
    """``STANCELINE_CHROMIUM``, else Debian's ``chromium`` on the PATH."""
    if configured := os.environ.get("STANCELINE_CHROMIUM"):
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    if path is None:
        reason = (
            "no system Chromium: install Debian's package (apt-get install chromium) or set "
            "STANCELINE_CHROMIUM; .ci/run installs it and runs these tests"
        )
        if os.environ.get("STANCELINE_BROWSER_TESTS") == "required":
            pytest.fail(reason)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path)
        yield launched
        await launched.close()


@dataclass
class Watched:
    """A page, with every dialog it tried to open and every console error it logged."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
async def watched(browser: Browser) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport={"width": 1360, "height": 1000})
    page = await context.new_page()
    seen = Watched(page)

    async def on_dialog(dialog: Dialog) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.errors.append(message.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.errors.append(f"uncaught: {error}"))
    yield seen
    await context.close()


def service_env(settings: Settings) -> dict[str, str]:
    return {
        "STANCELINE_DATABASE_URL": settings.database_url or "",
        "STANCELINE_REDIS_URL": settings.redis_url or "",
        "STANCELINE_STREAM": settings.stream,
        "STANCELINE_GROUP": settings.group,
    }


@pytest.fixture
async def founding_service(
    settings: Settings, redis_client: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[str]:
    """``stanceline up`` with the founding example published through its stream and
    projected; yields the base URL."""
    async with service_running(["up"], service_env(settings), tmp_path) as service:
        for line in founding_lines():
            await redis_client.xadd(settings.stream, {"event": line})
        async with httpx.AsyncClient(base_url=service.base_url) as http:
            await eventually(lambda: http.get(US_HISTORY), lambda r: _points(r) == 3)
        yield service.base_url


def _points(response: httpx.Response) -> int:
    return len(response.json()["points"]) if response.status_code == 200 else -1

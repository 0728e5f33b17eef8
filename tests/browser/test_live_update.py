"""The dashboard follows the live feed (/v1/stream): a statement published with XADD
appears on the open page, with no reload."""

from __future__ import annotations

import json
from datetime import datetime

import redis.asyncio as aioredis
from playwright.async_api import expect

from browser.conftest import TOPIC, Watched
from browser.page import open_dashboard, series
from stanceline.settings import Settings
from support.events import statement

QUERY = f"topic={TOPIC}&include_descendants=true"


def _ms(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() * 1000


async def test_a_statement_published_with_xadd_appears_without_a_reload(
    founding_service: str,
    watched: Watched,
    settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    page = watched.page
    await open_dashboard(page, founding_service, QUERY)
    await page.wait_for_function("() => document.getElementById('live').dataset.mode === 'stream'")
    await page.evaluate("() => { window.stillTheSamePage = true; }")
    before = (await series(page))["us"]["points"]
    assert len(before) == 3

    # The Pentagon turns the US back to oppose: a flip of the rolled-up series.
    live = statement(
        "browser-live",
        "browser.live",
        "us.dod",
        TOPIC,
        "oppose",
        "2024-12-01T00:00:00Z",
        quote="Live from the stream.",
    )
    await redis_client.xadd(settings.stream, {"event": json.dumps(live)})

    await page.wait_for_function(
        "() => Chart.getChart(document.getElementById('stance-chart'))"
        ".data.datasets.find((d) => d.actorId === 'us').data.length === 4",
        timeout=20_000,
    )
    after = (await series(page))["us"]["points"]
    assert after[:3] == before
    assert after[3] == [_ms("2024-12-01T00:00:00Z"), -1, "browser.live", "oppose"]
    newest = page.locator("#changes li").first
    await expect(newest).to_have_attribute("data-statement-id", "browser.live")
    await expect(newest).to_have_class("change flip")
    await expect(newest.locator(".badge.flip")).to_be_visible()
    assert await page.evaluate("() => window.stillTheSamePage") is True

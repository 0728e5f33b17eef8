"""Untrusted text on the dashboard: every payload shows as text and none becomes an
element, in the DOM panels and in the chart's canvas tooltip alike."""

from __future__ import annotations

import asyncio
import json

import httpx
import redis.asyncio as aioredis
from playwright.async_api import expect

from browser.conftest import TOPIC, Watched
from browser.page import hover_point, open_dashboard, series
from stanceline.settings import Settings
from support.events import envelope, statement
from support.running import eventually

QUOTE = "<img src=x onerror=alert(1)>"
SPEAKER = "<script>alert(2)</script>"
ACTOR = "<script>alert(3)</script><img src=x onerror=alert(4)>"
TOPIC_TITLE = "<img src=x onerror=alert(5)> on <b>bold</b>"
SOURCE = "https://example.org/statements/1?ref=%3Cscript%3E"


def _hostile_events() -> list[dict[str, object]]:
    time = "2025-01-01T00:00:00Z"
    return [
        envelope(
            "xss-actor",
            "actor.registered",
            time,
            {"actor_id": "xss", "name": ACTOR, "kind": "other"},
        ),
        envelope(
            "xss-topic",
            "topic.registered",
            time,
            {"topic_id": "xss-topic", "title": TOPIC_TITLE, "kind": "other"},
        ),
        statement(
            "xss-statement",
            "xss.1",
            "xss",
            TOPIC,
            "support",
            "2024-08-01T12:00:00Z",
            score=0.5,
            quote=QUOTE,
            speaker={"name": SPEAKER, "role": "spokesperson"},
            source_url=SOURCE,
        ),
        statement("xss-statement-2", "xss.2", "xss", "xss-topic", "oppose", "2024-08-02T12:00:00Z"),
    ]


async def test_each_payload_shows_as_text_and_never_as_an_element(
    founding_service: str,
    watched: Watched,
    settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    for event in _hostile_events():
        await redis_client.xadd(settings.stream, {"event": json.dumps(event)})
    async with httpx.AsyncClient(base_url=founding_service) as http:
        await eventually(
            lambda: http.get("/v1/actors/xss/stances"),
            lambda r: r.status_code == 200 and len(r.json()["stances"]) == 2,
        )
        names = {a["actor_id"]: a["name"] for a in (await http.get("/v1/actors")).json()["actors"]}
        assert names["xss"] == ACTOR

    page = watched.page
    response = await page.goto(f"{founding_service}/?topic={TOPIC}&include_descendants=true")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    await page.wait_for_function("() => Number(document.body.dataset.refreshes) >= 1")

    # The actor's name: a heatmap row label and the chart's legend (canvas).
    row_label = page.locator('#heatmap tr[data-actor-id="xss"] th')
    await expect(row_label).to_have_text(ACTOR)
    await expect(row_label).to_be_visible()
    assert (await series(page))["xss"]["label"] == ACTOR
    # The topic's title: a heatmap column and an option of the topic picker.
    await expect(page.locator("#heatmap thead button", has_text="onerror=alert(5)")).to_have_text(
        TOPIC_TITLE
    )
    await expect(page.locator('#topic option[value="xss-topic"]')).to_have_text(TOPIC_TITLE)

    # The quote, speaker and source: the canvas tooltip and the detail panel on hover.
    tooltip = await hover_point(page, "xss", "xss.1")
    assert f"“{QUOTE}”" in tooltip["lines"], tooltip
    assert f"— {SPEAKER}, spokesperson" in tooltip["lines"], tooltip
    detail = page.locator('#point-detail article[data-statement-id="xss.1"]')
    await expect(detail.locator(".quote")).to_have_text(QUOTE)
    await expect(detail.locator(".quote")).to_be_visible()
    await expect(detail.locator(".speaker")).to_have_text(f"{SPEAKER}, spokesperson")
    await expect(detail.locator(".actor")).to_have_text(ACTOR)
    link = detail.locator(".source a")
    await expect(link).to_have_attribute("href", SOURCE)
    await expect(link).to_have_text(SOURCE)

    # Give any injected handler its chance to run, then look for what it would leave.
    await asyncio.sleep(1)
    assert watched.dialogs == []
    assert await page.locator("img").count() == 0
    assert await page.locator("b").count() == 0
    scripts = await page.locator("script").evaluate_all("(s) => s.map((e) => e.src)")
    assert [src.removeprefix(founding_service) for src in scripts] == [
        "/static/vendor/chart-4.6.2.umd.min.js",
        "/static/js/main.js",
    ]
    assert not [e for e in watched.errors if "Content Security Policy" in e], watched.errors


async def test_only_http_urls_become_links(founding_service: str, watched: Watched) -> None:
    """The guard behind every source link, in the browser's own URL parser."""
    page = watched.page
    await open_dashboard(page, founding_service, f"topic={TOPIC}")
    verdicts = await page.evaluate(
        """async (urls) => {
          const dom = await import("/static/js/dom.js");
          return urls.map((u) => dom.safeHttpUrl(u));
        }""",
        [
            "https://example.org/a",
            "http://example.org/b",
            "javascript:alert(1)",
            " JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "//example.org/c",
            "/relative",
        ],
    )
    assert verdicts == [
        "https://example.org/a",
        "http://example.org/b",
        None,
        None,
        None,
        None,
        None,
    ]
    assert watched.dialogs == []

"""The dashboard on the founding example, in headless Chromium: the US series as the API
gives it, hover details, the heatmap and the changes list, and a live update."""

from __future__ import annotations

from datetime import datetime

import httpx
from playwright.async_api import expect

from browser.conftest import TOPIC, US_HISTORY, Watched
from browser.page import hover_point, open_dashboard, series

QUERY = f"topic={TOPIC}&include_descendants=true"


def _ms(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() * 1000


async def _json(base_url: str, path: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.get(path)
        assert response.status_code == 200, response.text
        return dict(response.json())


async def test_the_chart_shows_the_us_series_with_its_three_points(
    founding_service: str, watched: Watched
) -> None:
    page = watched.page
    await open_dashboard(page, founding_service, QUERY)
    history = await _json(founding_service, US_HISTORY)
    points = history["points"]
    assert isinstance(points, list)

    lines = await series(page)
    us = lines["us"]
    assert us["label"] == "United States"
    assert us["points"] == [
        [_ms(p["said_at"]), p["score"], p["statement_id"], p["stance"]] for p in points
    ]
    # The founding example's own story, independent of the API: oppose, neutral, support.
    assert [p[3] for p in us["points"]] == ["oppose", "neutral", "support"]
    assert [p[1] for p in us["points"]] == [-1, 0, 1]
    # Rolled up: one line per top-level actor that spoke (Ukraine through its HUR).
    assert sorted(lines) == ["ua", "us"]

    # Hover John Kirby's point of May 2023 (Ukraine's HUR spoke the same day, with the same
    # score: both are drawn on one spot, and both are shown): the canvas tooltip and the
    # detail panel carry the quote and the speaker.
    kirby = points[0]
    tooltip = await hover_point(page, "us", kirby["statement_id"])
    assert tooltip["active"] == 2, tooltip
    assert any(kirby["quote"][:30] in line for line in tooltip["lines"]), tooltip
    assert any(kirby["speaker"]["name"] in line for line in tooltip["lines"]), tooltip
    kirby_id = kirby["statement_id"]
    shown = page.locator(f'#point-detail article[data-statement-id="{kirby_id}"]')
    await expect(shown.locator(".quote")).to_have_text(kirby["quote"])
    await expect(shown.locator(".speaker")).to_contain_text(kirby["speaker"]["name"])
    await expect(page.locator("#point-detail article")).to_have_count(2)

    # The heatmap: the US cell on this topic is contested, as the API says.
    stances = await _json(founding_service, "/v1/actors/us/stances?include_descendants=true")
    expected = {s["topic_id"]: s for s in stances["stances"]}  # type: ignore[union-attr]
    cell = page.locator(f'#heatmap tr[data-actor-id="us"] td[data-topic-id="{TOPIC}"]')
    await expect(cell).to_have_attribute("data-stance", expected[TOPIC]["stance"])
    await expect(cell).to_have_attribute("data-contested", "true")
    assert expected[TOPIC]["contested"] is True

    # The changes: every change point the feed holds for this topic's roll-ups (the US's
    # two shifts and the White House's, which has the NSC below it), newest first.
    feed = await _json(founding_service, f"/v1/changes?topic={TOPIC}&include_descendants=true")
    entries = feed["changes"]
    assert isinstance(entries, list)
    assert {e["status"] for e in entries} == {"added"}
    assert {(e["actor_id"], e["statement_id"]) for e in entries} >= {
        ("us", points[1]["statement_id"]),
        ("us", points[2]["statement_id"]),
    }
    items = page.locator("#changes li")
    await expect(items).to_have_count(len(entries))
    listed = await items.evaluate_all(
        "(items) => items.map((i) => [i.dataset.statementId, i.querySelector('time').dateTime])"
    )
    assert sorted(s for s, _ in listed) == sorted(e["statement_id"] for e in entries)
    assert [when for _, when in listed] == sorted((when for _, when in listed), reverse=True)
    assert await page.locator("#changes li.flip").count() == 0
    assert not [e for e in watched.errors if "Content Security Policy" in e], watched.errors

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


async def _refreshed(watched: Watched, before: int) -> None:
    await watched.page.wait_for_function(
        f"() => Number(document.body.dataset.refreshes) > {before}"
    )


async def _refreshes(watched: Watched) -> int:
    return int(await watched.page.evaluate("() => Number(document.body.dataset.refreshes)"))


async def test_the_controls_ask_as_of_a_day_without_roll_up_and_as_known_then(
    founding_service: str, watched: Watched
) -> None:
    page = watched.page
    await open_dashboard(page, founding_service, QUERY)

    # as of 1 June 2024: the US had gone from oppose to neutral, not yet to support.
    count = await _refreshes(watched)
    await page.locator("#as-of").fill("2024-06-01")
    await _refreshed(watched, count)
    assert "as_of=2024-06-01" in page.url
    history = await _json(founding_service, f"{US_HISTORY}&as_of=2024-06-01")
    assert (await series(page))["us"]["points"] == [
        [_ms(p["said_at"]), p["score"], p["statement_id"], p["stance"]]
        for p in history["points"]  # type: ignore[union-attr]
    ]
    assert [p[3] for p in (await series(page))["us"]["points"]] == ["oppose", "neutral"]

    # Without roll-up: one line per actor that spoke itself, each its own series.
    count = await _refreshes(watched)
    await page.locator("#include-descendants").uncheck()
    await _refreshed(watched, count)
    assert "include_descendants=false" in page.url
    speakers = await _json(founding_service, f"/v1/topics/{TOPIC}/stances?as_of=2024-06-01")
    own = sorted(s["actor_id"] for s in speakers["stances"])  # type: ignore[union-attr]
    assert own == ["ua.hur", "us.nsc", "us.white-house"]
    lines = await series(page)
    assert sorted(lines) == own
    for actor in own:
        path = f"/v1/actors/{actor}/topics/{TOPIC}/history?as_of=2024-06-01"
        mine = await _json(founding_service, path)
        assert [p[2] for p in lines[actor]["points"]] == [
            p["statement_id"]
            for p in mine["points"]  # type: ignore[union-attr]
        ]

    # Known at a moment before the example was recorded: nothing was known.
    count = await _refreshes(watched)
    await page.locator("#known-at").fill("2020-01-01T00:00:00")
    await _refreshed(watched, count)
    assert "known_at=" in page.url
    assert await series(page) == {}
    await expect(page.locator("#heatmap tbody tr")).to_have_count(0)
    await expect(page.locator("#changes li.hint")).to_have_text("No changes.")

    # "now" clears both moments.
    count = await _refreshes(watched)
    await page.locator("#now").click()
    await _refreshed(watched, count)
    assert "as_of" not in page.url
    assert "known_at" not in page.url
    assert [p[3] for p in (await series(page))["us.white-house"]["points"]] == [
        "neutral",
        "support",
    ]

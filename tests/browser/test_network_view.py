"""The dashboard's agreement network on the founding example, in headless Chromium: the
edges drawn (pair and sign) are the API's for the same query, read here independently;
a window slider walks weekly windows; an actor's hostile name is a text node."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import redis.asyncio as aioredis
from playwright.async_api import Page, expect

from browser.conftest import Watched
from browser.page import open_dashboard
from stanceline.settings import Settings
from support.events import envelope, statement
from support.running import eventually

TOPICS = (
    "us-arms-strikes-inside-russia,us-vehicles-used-in-belgorod-raid,ukraine-behind-belgorod-raid"
)
ACTORS = "us,ua,ru,rdk"
API = (
    f"/v1/networks/agreement?topics={TOPICS}&actors={ACTORS}&include_descendants=true"
    "&from=2023-05-01&to=2023-05-31"
)
PAGE = (
    "topic=us-arms-strikes-inside-russia&include_descendants=true"
    f"&net_topics={TOPICS}&net_actors={ACTORS}&net_from=2023-05-01&net_to=2023-05-31"
)
HOSTILE = "<img src=x onerror=alert(1)>"

# Each drawn edge: its pair, its sign and its weight as the SVG carries them.
DRAWN = """() => [...document.querySelectorAll("#network line.edge")].map((l) => [
  l.dataset.source, l.dataset.target, l.dataset.sign, l.dataset.weight])"""


def _sign(edge: dict[str, Any]) -> str:
    """Under the default aggregation (subtract): congruence against conflict."""
    raw = edge["congruence"] - edge["conflict"]
    return "congruence" if raw > 0 else "conflict" if raw < 0 else "even"


def _edges(window: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((e["source"], e["target"], _sign(e)) for e in window["edges"])


async def _drawn(page: Page) -> list[tuple[str, str, str]]:
    return sorted((s, t, sign) for s, t, sign, _ in await page.evaluate(DRAWN))


async def _answer(base_url: str, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.get(path)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _loads(page: Page) -> int:
    return int(
        await page.evaluate("() => Number(document.getElementById('network').dataset.loads)")
    )


async def test_the_network_shows_the_apis_edges_and_walks_its_windows(
    founding_service: str, watched: Watched
) -> None:
    page = watched.page
    await open_dashboard(page, founding_service, PAGE)
    answer = await _answer(founding_service, API)
    [window] = answer["windows"]
    # What a person draws by hand from the founding example (the picture).
    assert _edges(window) == [
        ("rdk", "ru", "congruence"),
        ("rdk", "us", "conflict"),
        ("ru", "ua", "conflict"),
        ("ru", "us", "conflict"),
        ("ua", "us", "congruence"),
    ]
    assert await _drawn(page) == _edges(window)
    widths = await page.evaluate(
        "() => [...document.querySelectorAll('#network line.edge')].map((l) => "
        "Number(l.getAttribute('stroke-width')))"
    )
    assert len(set(widths)) == 1  # every |weight| is 1 here
    nodes = page.locator("#network g.node")
    await expect(nodes).to_have_count(4)
    for node in window["nodes"]:
        await expect(page.locator(f'#network g[data-node-id="{node["id"]}"] text')).to_have_text(
            node["name"]
        )
    caption = page.locator("#network-caption")
    await expect(caption).to_contain_text("2023-05-01 to 2023-05-31, 8 statements")
    await expect(caption).to_contain_text(f"polarization {round(window['polarization'], 3)}")
    await expect(page.locator("#network-picker")).to_be_hidden()
    await expect(page.locator("#network-actors")).to_have_value(ACTORS)

    # Weekly windows with a triangular kernel, from the form: the slider appears and its
    # last window is the API's last window for that query.
    before = await _loads(page)
    await page.locator("#network-kernel").select_option("triangular")
    await page.wait_for_function(
        f"() => Number(document.getElementById('network').dataset.loads) > {before}"
    )
    before = await _loads(page)
    await page.locator("#network-window").fill("P7D")
    await page.locator("#network-window").press("Tab")
    await page.wait_for_function(
        f"() => Number(document.getElementById('network').dataset.loads) > {before}"
    )
    assert "net_window=P7D" in page.url
    assert "net_kernel=triangular" in page.url
    weekly = (await _answer(founding_service, f"{API}&window=P7D&kernel=triangular"))["windows"]
    assert len(weekly) > 1
    await expect(page.locator("#network-picker")).to_be_visible()
    assert await _drawn(page) == _edges(weekly[0])
    await page.locator("#network-at").focus()
    await page.keyboard.press("End")
    last = weekly[-1]
    shown = f"{last['start'][:10]} to {last['stop'][:10]}, {last['statements']} statements"
    await expect(caption).to_contain_text(f"window {len(weekly)} of {len(weekly)}: {shown}")
    assert await _drawn(page) == _edges(last)
    weights = {(s, t): float(w) for s, t, _, w in await page.evaluate(DRAWN)}
    assert weights == {(e["source"], e["target"]): e["weight"] for e in last["edges"]}

    # No topic picked: the network is the page's topic's (here: only the US and Ukraine
    # spoke on it), and the address no longer names network topics.
    before = await _loads(page)
    await page.locator("#network-topics").select_option([])
    await page.wait_for_function(
        f"() => Number(document.getElementById('network').dataset.loads) > {before}"
    )
    assert "net_topics" not in page.url
    own = await _answer(
        founding_service,
        API.replace(TOPICS, "us-arms-strikes-inside-russia") + "&window=P7D&kernel=triangular",
    )
    assert await _drawn(page) == _edges(own["windows"][-1]) == [("ua", "us", "congruence")]
    assert not [e for e in watched.errors if e.startswith("uncaught")], watched.errors


async def test_a_hostile_actor_name_is_drawn_as_text(
    founding_service: str,
    watched: Watched,
    settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    events = [
        envelope(
            "xss-net-actor",
            "actor.registered",
            "2023-01-01T00:00:00Z",
            {"actor_id": "xss-net", "name": HOSTILE, "kind": "other"},
        ),
        statement(
            "xss-net-statement",
            "xss-net.1",
            "xss-net",
            "ukraine-behind-belgorod-raid",
            "support",
            "2023-05-25T12:00:00Z",
        ),
    ]
    for event in events:
        await redis_client.xadd(settings.stream, {"event": json.dumps(event)})
    query = API.replace(ACTORS, f"{ACTORS},xss-net")
    async with httpx.AsyncClient(base_url=founding_service) as http:
        await eventually(
            lambda: http.get(query),
            lambda r: (
                r.status_code == 200
                and any(e["target"] == "xss-net" for e in r.json()["windows"][0]["edges"])
            ),
        )
    answer = await _answer(founding_service, query)

    page = watched.page
    await open_dashboard(page, founding_service, PAGE.replace(ACTORS, f"{ACTORS},xss-net"))
    label = page.locator('#network g[data-node-id="xss-net"] text')
    await expect(label).to_have_text(HOSTILE)
    await expect(label).to_be_visible()
    assert await _drawn(page) == _edges(answer["windows"][0])
    # Agreeing with Russia that Ukraine was behind the raid: congruent with ru, not ua.
    assert ("ru", "xss-net", "congruence") in await _drawn(page)
    assert ("ua", "xss-net", "conflict") in await _drawn(page)
    title = page.locator('#network line[data-target="xss-net"][data-source="ru"] title')
    await expect(title).to_contain_text(f"Russia – {HOSTILE}: congruence 1")

    await asyncio.sleep(1)  # give an injected handler its chance to run
    assert watched.dialogs == []
    assert await page.locator("img").count() == 0
    assert await page.locator("#network image").count() == 0
    assert not [e for e in watched.errors if "Content Security Policy" in e], watched.errors

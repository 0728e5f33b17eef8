"""Save the README's picture of the dashboard: ``.venv/bin/python tests/browser/screenshot.py``.

It runs ``stanceline up --demo`` on fresh embedded servers (the founding example,
published through the stream as an upstream would), opens the page in Debian's Chromium,
hovers John Kirby's May 2023 statement and writes docs/dashboard.png, with the founding
agreement network of May 2023 in the network panel.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

from browser.conftest import TOPIC, US_HISTORY, chromium_path  # noqa: E402
from browser.page import hover_point, open_dashboard  # noqa: E402
from fixtures.servers import traversable_tmpdir  # noqa: E402
from support.running import eventually  # noqa: E402
from support.service import free_port, service_running  # noqa: E402

OUT = TESTS.parent / "docs" / "dashboard.png"
# The topic's chart, and the founding example's agreement network in May 2023 below it.
QUERY = (
    f"topic={TOPIC}&include_descendants=true&net_topics={TOPIC},us-vehicles-used-in-belgorod-raid,"
    "ukraine-behind-belgorod-raid&net_actors=us,ua,ru,rdk&net_from=2023-05-01&net_to=2023-05-31"
)


async def main() -> None:
    chromium = chromium_path()
    if chromium is None:
        raise SystemExit("no system Chromium: apt-get install chromium, or set STANCELINE_CHROMIUM")
    with traversable_tmpdir("stanceline-screenshot-") as data_dir:
        env = {
            "STANCELINE_DATA_DIR": str(data_dir / ".stanceline"),
            "STANCELINE_EMBEDDED_REDIS_PORT": str(free_port()),
            "STANCELINE_DATABASE_URL": "",
            "STANCELINE_REDIS_URL": "",
        }
        async with service_running(["up", "--demo"], env, data_dir) as service:
            async with httpx.AsyncClient(base_url=service.base_url) as http:
                await eventually(
                    lambda: http.get(US_HISTORY),
                    lambda r: r.status_code == 200 and len(r.json()["points"]) == 3,
                    within=60,
                )
                kirby = (await http.get(US_HISTORY)).json()["points"][0]["statement_id"]
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=chromium)
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                await open_dashboard(page, service.base_url, QUERY)
                await page.wait_for_function(
                    "() => document.getElementById('live').dataset.mode === 'stream'"
                )
                await hover_point(page, "us", kirby)
                await page.screenshot(path=str(OUT), full_page=True)
                await browser.close()
    print(f"wrote {OUT.relative_to(TESTS.parent)}")


if __name__ == "__main__":
    asyncio.run(main())

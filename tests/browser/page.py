"""Reading the dashboard from inside the browser: what the chart was given, where its
points are drawn, and waiting for the page to finish a refresh."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

# Per line: the actor, its label and each point as the chart holds it.
SERIES = """() => {
  const chart = Chart.getChart(document.getElementById("stance-chart"));
  return chart.data.datasets.map((d) => ({
    actor_id: d.actorId,
    label: d.label,
    points: d.data.map((p) => [p.x, p.y, p.point.statement_id, p.point.stance]),
  }));
}"""

# The page coordinates of one drawn point, for the mouse.
POINT_AT = """([actorId, statementId]) => {
  const canvas = document.getElementById("stance-chart");
  const chart = Chart.getChart(canvas);
  const index = chart.data.datasets.findIndex((d) => d.actorId === actorId);
  const at = chart.data.datasets[index].data.findIndex((p) => p.point.statement_id === statementId);
  const element = chart.getDatasetMeta(index).data[at];
  const box = canvas.getBoundingClientRect();
  return [box.left + element.x, box.top + element.y];
}"""

# What the canvas tooltip says now (Chart.js draws it; nothing of it is in the DOM).
TOOLTIP = """() => {
  const tooltip = Chart.getChart(document.getElementById("stance-chart")).tooltip;
  return {
    active: tooltip.getActiveElements().length,
    title: tooltip.title ?? [],
    lines: (tooltip.body ?? []).flatMap((b) => [...b.before, ...b.lines, ...b.after]),
  };
}"""


async def open_dashboard(page: Page, base_url: str, query: str) -> None:
    """Load the page and wait until its first refresh has drawn everything."""
    response = await page.goto(f"{base_url}/?{query}")
    assert response is not None
    assert response.status == 200
    await page.wait_for_function("() => Number(document.body.dataset.refreshes) >= 1")


async def series(page: Page) -> dict[str, dict[str, Any]]:
    lines = await page.evaluate(SERIES)
    return {line["actor_id"]: line for line in lines}


async def hover_point(page: Page, actor_id: str, statement_id: str) -> dict[str, Any]:
    x, y = await page.evaluate(POINT_AT, [actor_id, statement_id])
    await page.mouse.move(x, y)
    await page.wait_for_function(
        "() => Chart.getChart(document.getElementById('stance-chart')).tooltip"
        ".getActiveElements().length > 0"
    )
    tooltip: dict[str, Any] = await page.evaluate(TOOLTIP)
    return tooltip

"""The page's own bookkeeping, run in the browser on hand-made inputs: replaying the
changes feed (added, then withdrawn) and ordering actors as a tree."""

from __future__ import annotations

from browser.conftest import TOPIC, Watched
from browser.page import open_dashboard


def _entry(status: str, actor: str, statement: str, said_at: str) -> dict[str, object]:
    return {
        "status": status,
        "actor_id": actor,
        "topic_id": "t",
        "include_descendants": False,
        "said_at": said_at,
        "statement_id": statement,
        "change": "shift",
        "stance": "support",
    }


async def test_replaying_the_feed_keeps_what_stands_newest_first(
    founding_service: str, watched: Watched
) -> None:
    page = watched.page
    await open_dashboard(page, founding_service, f"topic={TOPIC}")
    feed = [
        _entry("added", "a", "s1", "2024-01-01T00:00:00Z"),
        _entry("added", "b", "s2", "2024-03-01T00:00:00Z"),
        _entry("withdrawn", "a", "s1", "2024-01-01T00:00:00Z"),  # rewritten by a correction
        _entry("added", "a", "s3", "2024-02-01T00:00:00Z"),
        _entry("added", "b", "s4", "2024-03-01T00:00:00Z"),  # same day as s2
        _entry("withdrawn", "b", "s2", "2024-03-01T00:00:00Z"),
        _entry("added", "b", "s2", "2024-03-01T00:00:00Z"),  # and back again
    ]
    standing = await page.evaluate(
        """async (feed) => {
          const changes = await import("/static/js/changes.js");
          return changes.standing(feed).map((e) => e.statement_id);
        }""",
        feed,
    )
    # s1 withdrawn; s2 (re-added) and s4 share a day and an actor: by statement id.
    assert standing == ["s2", "s4", "s3"]


async def test_actors_are_listed_as_a_tree(founding_service: str, watched: Watched) -> None:
    page = watched.page
    await open_dashboard(page, founding_service, f"topic={TOPIC}")
    actors = [
        {"actor_id": "us.nsc", "parent_id": "us.white-house"},
        {"actor_id": "ru", "parent_id": None},
        {"actor_id": "us", "parent_id": None},
        {"actor_id": "us.white-house", "parent_id": "us"},
        {"actor_id": "orphan", "parent_id": "not-registered"},
        {"actor_id": "us.dod", "parent_id": "us"},
    ]
    ordered = await page.evaluate(
        """async (actors) => {
          const heatmap = await import("/static/js/heatmap.js");
          return heatmap.treeOrder(actors).map((r) => [r.actor.actor_id, r.depth]);
        }""",
        actors,
    )
    assert ordered == [
        ["ru", 0],
        ["us", 0],
        ["us.white-house", 1],
        ["us.nsc", 2],
        ["us.dod", 1],
        ["orphan", 0],
    ]

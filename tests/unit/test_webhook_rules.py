"""The flip-alert rules without servers: kinds, ids, bodies, the retry schedule, the SSRF rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stanceline.domain.webhooks import (
    DEFAULT_SCHEDULE,
    FeedEntry,
    Kind,
    body,
    event_type,
    message_id,
    next_delay,
    parse_schedule,
    receives,
    retry_after,
    should_retry,
)
from stanceline.egress import UrlRefused, check_url
from stanceline.settings import Settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_kinds_select_feed_entries() -> None:
    assert receives([Kind.FLIP]) == ["added:flip"]
    assert receives([Kind.CHANGE]) == ["added:shift"]
    assert receives([Kind.FLIP, Kind.WITHDRAWN]) == ["added:flip", "withdrawn:flip"]
    assert receives([Kind.WITHDRAWN]) == [
        "added:flip",
        "added:shift",
        "withdrawn:flip",
        "withdrawn:shift",
    ]
    assert event_type("added", "flip") == "stance.flipped"
    assert event_type("added", "shift") == "stance.changed"
    assert event_type("withdrawn", "flip") == "stance.withdrawn"


@given(st.text(min_size=1, max_size=40), st.integers(1, 2**62), st.integers(1, 2**62))
def test_message_ids_are_stable_and_distinct(sub: str, a: int, b: int) -> None:
    assert message_id(sub, a) == message_id(sub, a)
    assert (message_id(sub, a) == message_id(sub, b)) == (a == b)
    assert message_id(sub, a).startswith("msg_")


def test_the_body_is_the_same_bytes_each_time() -> None:
    entry = FeedEntry(
        7, "c", "added", "us", "t", True, "s", NOW, "support", "oppose", "p", "flip", NOW
    )
    assert body("sub_1", 3, entry) == body("sub_1", 3, entry)
    assert b'"type":"stance.flipped"' in body("sub_1", 3, entry)
    assert b'"sequence":3' in body("sub_1", 3, entry)


def test_the_default_schedule_is_standard_webhooks() -> None:
    text = Settings.model_fields["webhook_retry_schedule"].default
    assert parse_schedule(text) == DEFAULT_SCHEDULE
    with pytest.raises(ValueError, match="non-negative"):
        parse_schedule("5,-1")


@given(st.integers(0, 12), st.floats(0, 1, exclude_max=True), st.none() | st.floats(0, 10_000))
def test_next_delay_never_comes_before_the_schedule_or_retry_after(
    done: int, jitter: float, floor: float | None
) -> None:
    schedule = (0.0, 1.0, 1.0, 2.0)
    delay = next_delay(schedule, done, floor, jitter)
    if done >= len(schedule):
        assert delay is None
        return
    assert delay is not None
    assert delay >= schedule[done]
    assert delay >= (floor or 0)
    assert delay <= max(schedule[done] * 1.2, floor or 0)


def test_retry_after_as_seconds_or_a_date() -> None:
    assert retry_after("1", NOW) == 1.0
    assert retry_after("Thu, 01 Jan 2026 00:00:30 GMT", NOW) == 30.0
    assert retry_after((NOW - timedelta(days=1)).strftime("%a, %d %b %Y %H:%M:%S GMT"), NOW) == 0
    assert retry_after("soon", NOW) is None
    assert retry_after(None, NOW) is None


def test_only_2xx_succeeds_and_410_is_final() -> None:
    assert [should_retry(s) for s in (200, 204, 301, 410, 429, 500, None)] == [
        False,
        False,
        True,
        False,
        True,
        True,
        True,
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/",
        "http://10.0.0.8/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
async def test_private_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(UrlRefused, match="private"):
        await check_url(url, allow_private=False)
    await check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["ftp://example.org/", "/hook", "http://user:pw@example.org/"])
async def test_only_absolute_http_urls_without_credentials(url: str) -> None:
    with pytest.raises(UrlRefused):
        await check_url(url, allow_private=True)


async def test_a_public_address_is_allowed() -> None:
    await check_url("https://93.184.215.14/hook", allow_private=False)

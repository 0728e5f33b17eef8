"""The shard rules: names, their spread over a cluster's masters, routing, shard sets."""

from __future__ import annotations

import binascii
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stanceline.contract.shards import (
    MAX_SHARDS,
    route,
    selected,
    shard_key,
    shard_of,
    shard_streams,
)

SLOTS = 16384


def _slot(key: str) -> int:
    """Redis Cluster's key slot, restated from its specification (CRC16-XMODEM of the
    hash tag, or of the whole key without one), independently of the module under test."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return binascii.crc_hqx(key.encode(), 0) % SLOTS


def test_one_shard_is_the_stream_itself() -> None:
    assert shard_streams("stanceline:statements", 1) == ["stanceline:statements"]


def test_shards_are_distinct_keys_with_their_own_hash_tag() -> None:
    keys = shard_streams("stanceline:statements", MAX_SHARDS)
    assert len(set(keys)) == MAX_SHARDS
    assert keys[:2] == ["stanceline:statements:{0a}", "stanceline:statements:{1a}"]
    assert len({_slot(k) for k in keys}) == MAX_SHARDS


@pytest.mark.parametrize("masters", [2, 3, 4, 6, 8])
@pytest.mark.parametrize("shards", [2, 3, 4, 6, 8, 12, 16])
def test_shards_spread_evenly_over_the_masters_of_an_even_cluster(
    masters: int, shards: int
) -> None:
    """`redis-cli --cluster create` splits the slots into equal ranges, one per master."""
    counts = [0] * masters
    for key in shard_streams("stanceline:statements", shards):
        counts[_slot(key) * masters // SLOTS] += 1
    fair = -(-shards // masters)
    # No master over its fair share on three masters (the usual smallest cluster), at most
    # one over elsewhere; none more than one under.
    assert max(counts) <= fair + (0 if masters == 3 else 1), counts
    if shards >= masters:
        assert min(counts) >= shards // masters - 1, counts


def test_out_of_range_shard_counts_are_refused() -> None:
    for bad in (0, MAX_SHARDS + 1):
        with pytest.raises(ValueError, match="shards"):
            shard_streams("s", bad)


def _line(**document: object) -> bytes:
    return json.dumps(document).encode()


def test_statements_route_by_actor_and_the_rest_by_event_id_or_bytes() -> None:
    statement = _line(id="e1", data={"actor_id": "us.dod", "statement_id": "s"})
    retraction = _line(id="e2", data={"statement_id": "s"})
    assert shard_key(statement) == b"us.dod"
    assert shard_key(_line(id="e3", data={"actor_id": "us.dod"})) == b"us.dod"
    assert shard_key(retraction) == b"e2"
    assert shard_key(b"not json") == b"not json"
    assert shard_key(b"[1, 2]") == b"[1, 2]"


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=MAX_SHARDS))
def test_the_shard_is_the_sha256_prefix_mod_n(key: bytes, shards: int) -> None:
    expected = int(hashlib.sha256(key).hexdigest()[:16], 16) % shards
    assert shard_of(key, shards) == expected


def test_one_actor_always_lands_on_one_shard() -> None:
    lines = [_line(id=f"e{n}", data={"actor_id": "us.nsc"}) for n in range(20)]
    assert len({route("s", 8, line) for line in lines}) == 1


def test_a_projector_reads_the_shards_it_is_given() -> None:
    assert selected(None, 4) == [0, 1, 2, 3]
    assert selected("0-1,3", 4) == [0, 1, 3]
    assert selected(" 2 ", 4) == [2]
    for bad in ("4", "1-5", "x", "3-1"):
        with pytest.raises(ValueError, match="STANCELINE_SHARDS"):
            selected(bad, 4)

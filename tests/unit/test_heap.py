"""heap.settle freezes a service's start-up heap once, and only once."""

from __future__ import annotations

import gc
import weakref

from stanceline.heap import settle


class _Node:
    """An object that can hold itself: only the cycle collector frees it."""

    me: _Node | None = None


def test_settle_freezes_once_and_later_cycles_stay_collectable() -> None:
    settle()
    frozen = gc.get_freeze_count()
    assert frozen > 0

    node = _Node()
    node.me = node
    gone = weakref.ref(node)
    del node
    settle()  # a second call, with new objects about: nothing more is frozen
    assert gc.get_freeze_count() == frozen
    gc.collect()
    assert gone() is None

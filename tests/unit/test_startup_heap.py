"""freeze_startup_heap: start-up objects leave the cyclic GC's later passes; garbage does not
stay behind frozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from favorited.cli import freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic GC frees it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


def test_live_objects_are_frozen_and_cyclic_garbage_is_freed_first(unfrozen: None) -> None:
    kept = _Node()
    dropped = _Node()
    gone = weakref.ref(dropped)
    del dropped

    freeze_startup_heap()

    assert gone() is None, "garbage alive at start-up must be collected, not frozen"
    assert gc.get_freeze_count() > 0
    assert all(o is not kept for o in gc.get_objects()), "a live object must be frozen"

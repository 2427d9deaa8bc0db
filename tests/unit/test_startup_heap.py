"""tune_gc: start-up objects leave the cyclic GC's later passes, garbage does not stay behind
frozen, and young collections come less often."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from favorited.cli import YOUNG_GC_THRESHOLD, tune_gc


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic GC frees it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()  # the rest of the test session collects as usual
    gc.set_threshold(*thresholds)


def test_live_objects_are_frozen_and_cyclic_garbage_is_freed_first(unfrozen: None) -> None:
    kept = _Node()
    dropped = _Node()
    gone = weakref.ref(dropped)
    del dropped

    tune_gc()

    assert gone() is None, "garbage alive at start-up must be collected, not frozen"
    assert gc.get_freeze_count() > 0
    assert all(o is not kept for o in gc.get_objects()), "a live object must be frozen"


def test_young_collections_wait_for_many_more_allocations(unfrozen: None) -> None:
    _, older, oldest = gc.get_threshold()
    tune_gc()
    assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, older, oldest)
    assert YOUNG_GC_THRESHOLD >= 10_000  # CPython's 700 gave a full collection every ~3 s

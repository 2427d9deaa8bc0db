"""tune_gc: start-up objects leave the cyclic GC's later passes, garbage does not stay behind
frozen, and the API's young collections come less often."""

from __future__ import annotations

import argparse
import gc
import weakref
from collections.abc import Iterator
from typing import cast

import pytest

from favorited import cli
from favorited.cli import API_YOUNG_GC_THRESHOLD, tune_gc
from favorited.config import Settings


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


def test_young_collections_wait_for_the_threshold_given(unfrozen: None) -> None:
    thresholds = gc.get_threshold()
    tune_gc()
    assert gc.get_threshold() == thresholds  # the shim and the consumer keep CPython's
    tune_gc(young_threshold=API_YOUNG_GC_THRESHOLD)
    assert gc.get_threshold() == (API_YOUNG_GC_THRESHOLD, *thresholds[1:])
    assert API_YOUNG_GC_THRESHOLD >= 10_000  # CPython's 700 gave a full collection every ~3 s


def test_only_the_api_collects_young_objects_less_often(monkeypatch: pytest.MonkeyPatch) -> None:
    tuned: list[dict[str, int]] = []
    monkeypatch.setattr(cli, "tune_gc", lambda **kwargs: tuned.append(kwargs))
    monkeypatch.setattr(cli, "_run_service", lambda name, run, settings: None)
    for command in ("api", "webhooks", "consumer"):
        cli._run(argparse.Namespace(command=command), cast(Settings, object()))
    assert tuned == [{"young_threshold": API_YOUNG_GC_THRESHOLD}, {}, {}]

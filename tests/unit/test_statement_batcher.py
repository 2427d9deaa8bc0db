"""StatementBatcher: items that arrive together share a statement; each gets its own answer.

Driven with joins, the batcher's first user, in per-livestream lanes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest

from favorited import errors
from favorited.domain import models
from favorited.domain.models import JoinOutcome, JoinResult
from favorited.store.batcher import StatementBatcher
from favorited.store.participants import PendingJoin
from tests.support.joins import pending_join
from tests.support.waiting import until


def _by_livestream(join: PendingJoin) -> str:
    return join.livestream_id


def _join(user: str, livestream: str = "ls") -> PendingJoin:
    return pending_join(livestream, user)


def _result(join: PendingJoin, outcome: JoinOutcome = JoinOutcome.FULL) -> JoinResult:
    return JoinResult(
        outcome=outcome,
        livestream_status=models.LivestreamStatus.LIVE,
        room_name=join.user_id,  # lets a test see whose answer it got
        max_participants=1,
        participant=None,
    )


class _Store:
    """Stands in for PostgreSQL: records the statements; the first one waits for `release`."""

    def __init__(self, *, fail_batches: BaseException | None = None) -> None:
        self.statements: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail_batches = fail_batches

    async def run(self, joins: Sequence[PendingJoin]) -> list[JoinResult]:
        self.statements.append([j.user_id for j in joins])
        await self.release.wait()
        if self.fail_batches is not None:
            raise self.fail_batches
        return [_result(j) for j in joins]

    async def run_one(self, join: PendingJoin) -> JoinResult:
        self.statements.append([join.user_id])
        await self.release.wait()
        if join.user_id == "broken":
            raise errors.DependencyUnavailableError("down", reason="DATABASE_UNAVAILABLE")
        return _result(join)


async def test_joins_that_arrive_during_a_statement_go_together_in_the_next() -> None:
    store = _Store()
    batcher = StatementBatcher(store.run, store.run_one, lane=_by_livestream)
    first = asyncio.create_task(batcher.submit(_join("u0")))
    others = [asyncio.create_task(batcher.submit(_join(f"u{i}"))) for i in range(1, 5)]
    await until(lambda: batcher.waiting == 4)
    store.release.set()
    answers = await asyncio.gather(first, *others)
    assert [a.room_name for a in answers] == ["u0", "u1", "u2", "u3", "u4"]
    # Alone at first; then the four that waited, together.
    assert store.statements == [["u0"], ["u1", "u2", "u3", "u4"]]
    assert batcher.waiting == 0


async def test_livestreams_never_share_a_batch_nor_wait_for_each_other() -> None:
    store = _Store()
    batcher = StatementBatcher(store.run, store.run_one, lane=_by_livestream)
    held = asyncio.create_task(batcher.submit(_join("u0", "busy")))
    queued = asyncio.create_task(batcher.submit(_join("u1", "busy")))
    await until(lambda: batcher.waiting == 1)
    elsewhere = asyncio.create_task(batcher.submit(_join("u2", "free")))
    await until(lambda: store.statements == [["u0"], ["u2"]])
    assert not queued.done()  # its livestream's batch still runs
    store.release.set()
    await asyncio.gather(held, queued, elsewhere)
    assert store.statements == [["u0"], ["u2"], ["u1"]]


async def test_a_failed_batch_answers_each_join_on_its_own() -> None:
    store = _Store(fail_batches=asyncpg.UniqueViolationError("duplicate"))
    batcher = StatementBatcher(store.run, store.run_one, lane=_by_livestream)
    first = asyncio.create_task(batcher.submit(_join("u0")))
    others = [asyncio.create_task(batcher.submit(_join(u))) for u in ("u1", "broken", "u2")]
    await until(lambda: batcher.waiting == 3)
    store.release.set()
    results = await asyncio.gather(first, *others, return_exceptions=True)
    assert [r.room_name for r in results if isinstance(r, JoinResult)] == ["u0", "u1", "u2"]
    assert isinstance(results[2], errors.DependencyUnavailableError)
    assert store.statements[1:] == [["u1", "broken", "u2"], ["u1"], ["broken"], ["u2"]]


async def test_unavailability_fails_every_join_of_the_batch() -> None:
    down = errors.DependencyUnavailableError("down", reason="DATABASE_UNAVAILABLE")
    store = _Store(fail_batches=down)
    batcher = StatementBatcher(store.run, store.run_one, lane=_by_livestream)
    first = asyncio.create_task(batcher.submit(_join("u0")))
    others = [asyncio.create_task(batcher.submit(_join(f"u{i}"))) for i in range(1, 4)]
    await until(lambda: batcher.waiting == 3)
    store.release.set()
    assert isinstance(await first, JoinResult)
    for task in others:
        with pytest.raises(errors.DependencyUnavailableError):
            await task


async def test_a_cancelled_caller_neither_fails_nor_stalls_the_others() -> None:
    store = _Store()
    batcher = StatementBatcher(store.run, store.run_one, lane=_by_livestream)
    leader = asyncio.create_task(batcher.submit(_join("u0")))
    queued = [asyncio.create_task(batcher.submit(_join(f"u{i}"))) for i in range(1, 5)]
    await until(lambda: batcher.waiting == 4)
    leader.cancel()  # its statement runs on for nobody; the next batch still goes
    queued[0].cancel()  # never joins: skipped by the batch
    store.release.set()
    with pytest.raises(asyncio.CancelledError):
        await leader
    with pytest.raises(asyncio.CancelledError):
        await queued[0]
    answers = await asyncio.gather(*queued[1:])
    assert [a.room_name for a in answers] == ["u2", "u3", "u4"]
    assert store.statements == [["u0"], ["u2", "u3", "u4"]]
    # And the batcher is free again: a later join goes at once, alone.
    assert (await batcher.submit(_join("late"))).room_name == "late"

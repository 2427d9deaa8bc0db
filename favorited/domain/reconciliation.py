"""Reconciliation: heal what lost webhooks left behind, by asking LiveKit what is really there.

- LIVE livestreams whose room (that incarnation, by sid) is gone → ENDED, participants LEFT.
- JOINED participants LiveKit does not list, unchanged for longer than the grace window → LEFT
  (this also ends "ghosts" who joined through the API but never connected).
- SCHEDULED livestreams stuck past creation (a crash between the insert and LIVE) → ERROR, their
  room deleted if it exists.
Nothing is ended while LiveKit cannot be asked: an unreachable LiveKit aborts the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from favorited.domain import ports

log = logging.getLogger(__name__)

_PAGE = 100


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    livestreams_ended: int = 0
    participants_left: int = 0
    scheduled_failed: int = 0


class Reconciler:
    def __init__(
        self,
        *,
        db: ports.Database,
        rooms: ports.RoomGateway,
        grace_s: int,
        stuck_scheduled_s: int = 300,
    ) -> None:
        self._db = db
        self._rooms = rooms
        self._grace_s = grace_s
        self._stuck_s = stuck_scheduled_s

    async def run_once(self) -> ReconcileReport:
        scheduled = await self._fail_stuck_scheduled()
        ended = left = 0
        after: str | None = None
        while True:
            async with self._db.reader() as uow:
                page = await uow.livestreams.list_live(after_id=after, limit=_PAGE)
            if not page:
                break
            after = page[-1].id
            rooms = await self._rooms.list_rooms([ls.room_name for ls in page])
            for ls in page:
                if rooms.get(ls.room_name) != ls.livekit_room_sid:
                    async with self._db.transaction() as tx:
                        if await tx.livestreams.end(ls.id):
                            ended += 1
                            log.info("reconciled: room gone", extra={"livestream": ls.id})
                    continue
                present = await self._rooms.list_participants(ls.room_name)
                async with self._db.transaction() as tx:
                    # Lock order: livestream first, as everywhere.
                    if await tx.livestreams.get(ls.id, lock=True) is None:
                        continue
                    left += await tx.participants.mark_absent_left(
                        ls.id, present=present, grace_s=self._grace_s
                    )
        report = ReconcileReport(ended, left, scheduled)
        log.info("reconciliation finished", extra=vars_of(report))
        return report

    async def _fail_stuck_scheduled(self) -> int:
        async with self._db.reader() as uow:
            stuck = await uow.livestreams.list_stuck_scheduled(older_than_s=self._stuck_s)
        failed = 0
        for ls in stuck:
            # Delete first, while this livestream still holds the name (see create_livestream).
            await self._rooms.delete_room(ls.room_name)
            async with self._db.transaction() as tx:
                if await tx.livestreams.mark_error(ls.id) is not None:
                    failed += 1
        return failed


def vars_of(report: ReconcileReport) -> dict[str, int]:
    return {
        "livestreams_ended": report.livestreams_ended,
        "participants_left": report.participants_left,
        "scheduled_failed": report.scheduled_failed,
    }

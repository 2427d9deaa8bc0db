"""GetLivestream and ListLivestreams: filters, keyset paging, opaque page tokens."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import asyncpg
import grpc

from favorited_api.v1 import livestream_pb2
from favorited_api.v1 import livestream_service_pb2 as pb
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from tests.api.helpers import create, fails
from tests.conftest import Metadata

Auth = Callable[..., Metadata]

_INSERT_MANY = """
INSERT INTO livestreams (id, room_name, title, created_by, max_participants, room_capacity,
                         empty_timeout_s, status, start_time)
SELECT gen_random_uuid(), 'bulk-' || g, 'Bulk ' || g, $2, 10, 11, 60, 'LIVE', now()
FROM generate_series(1, $1) AS g
"""


async def test_get_returns_the_livestream_to_any_caller(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, room_name: str
) -> None:
    created = await create(livestreams, auth("alice"), room_name)
    got = await livestreams.GetLivestream(
        pb.GetLivestreamRequest(livestream_id=created.id), metadata=auth("bob")
    )
    assert got.livestream == created


async def test_get_unknown_or_malformed_id(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth
) -> None:
    missing = str(uuid.uuid4())
    failure = await fails(
        livestreams.GetLivestream(
            pb.GetLivestreamRequest(livestream_id=missing), metadata=auth("a")
        )
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "LIVESTREAM_NOT_FOUND")
    assert failure.metadata == {"livestream": missing}
    failure = await fails(
        livestreams.GetLivestream(pb.GetLivestreamRequest(livestream_id="x'--"), metadata=auth("a"))
    )
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.violations == {"livestream_id": "must be a UUID"}


async def test_list_is_newest_first_and_filters(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, room_name: str
) -> None:
    a1 = await create(livestreams, auth("alice"), f"{room_name}-1")
    b1 = await create(livestreams, auth("bob"), f"{room_name}-2")
    a2 = await create(livestreams, auth("alice"), f"{room_name}-3")
    await livestreams.DeleteLivestream(
        pb.DeleteLivestreamRequest(livestream_id=a1.id), metadata=auth("alice")
    )
    everything = await livestreams.ListLivestreams(pb.ListLivestreamsRequest(), metadata=auth("z"))
    assert [ls.id for ls in everything.livestreams] == [a2.id, b1.id, a1.id]
    assert everything.next_page_token == ""
    mine = await livestreams.ListLivestreams(
        pb.ListLivestreamsRequest(created_by="alice"), metadata=auth("z")
    )
    assert [ls.id for ls in mine.livestreams] == [a2.id, a1.id]
    live_by_alice = await livestreams.ListLivestreams(
        pb.ListLivestreamsRequest(created_by="alice", status=livestream_pb2.LIVESTREAM_STATUS_LIVE),
        metadata=auth("z"),
    )
    assert [ls.id for ls in live_by_alice.livestreams] == [a2.id]


async def test_page_size_defaults_to_50_and_is_capped_at_100(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, db: asyncpg.Pool
) -> None:
    await db.execute(_INSERT_MANY, 120, "bulk")
    default = await livestreams.ListLivestreams(pb.ListLivestreamsRequest(), metadata=auth("z"))
    assert len(default.livestreams) == 50 and default.next_page_token
    capped = await livestreams.ListLivestreams(
        pb.ListLivestreamsRequest(page_size=1000), metadata=auth("z")
    )
    assert len(capped.livestreams) == 100
    failure = await fails(
        livestreams.ListLivestreams(pb.ListLivestreamsRequest(page_size=-1), metadata=auth("z"))
    )
    assert failure.violations == {"page_size": "must not be negative"}


async def test_paging_1000_rows_while_inserting_returns_each_existing_row_once(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, db: asyncpg.Pool
) -> None:
    await db.execute(_INSERT_MANY, 1000, "bulk")
    existing = {str(r["id"]) for r in await db.fetch("SELECT id FROM livestreams")}
    stop = asyncio.Event()

    async def keep_inserting() -> int:
        inserted = 0
        while not stop.is_set():
            await db.execute(
                _INSERT_MANY.replace("'bulk-'", "'late-' || $2 || '-'"), 3, str(inserted)
            )
            inserted += 3
        return inserted

    inserter = asyncio.create_task(keep_inserting())
    seen: list[str] = []
    token = ""
    try:
        while True:
            page = await livestreams.ListLivestreams(
                pb.ListLivestreamsRequest(page_size=37, page_token=token), metadata=auth("z")
            )
            seen.extend(ls.id for ls in page.livestreams)
            token = page.next_page_token
            if not token:
                break
    finally:
        stop.set()
        inserted = await inserter
    assert inserted > 0  # rows really were being inserted while we paged
    old = [i for i in seen if i in existing]
    assert len(old) == len(set(old)) == 1000


async def test_forged_or_mismatched_page_tokens_are_rejected(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, db: asyncpg.Pool
) -> None:
    await db.execute(_INSERT_MANY, 5, "carol")
    page = await livestreams.ListLivestreams(
        pb.ListLivestreamsRequest(page_size=2, created_by="carol"), metadata=auth("z")
    )
    token = page.next_page_token
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for request in (
        pb.ListLivestreamsRequest(page_token=tampered, created_by="carol"),
        pb.ListLivestreamsRequest(page_token="not-a-token", created_by="carol"),
        pb.ListLivestreamsRequest(page_token=token, created_by="dave"),
        pb.ListLivestreamsRequest(page_token=token),
    ):
        failure = await fails(livestreams.ListLivestreams(request, metadata=auth("z")))
        assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
        assert failure.reason == "PAGE_TOKEN_INVALID"
        assert list(failure.violations) == ["page_token"]
    ok = await livestreams.ListLivestreams(
        pb.ListLivestreamsRequest(page_size=2, page_token=token, created_by="carol"),
        metadata=auth("z"),
    )
    assert len(ok.livestreams) == 2


async def test_list_rejects_unknown_status_filter(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth
) -> None:
    failure = await fails(
        livestreams.ListLivestreams(pb.ListLivestreamsRequest(status=42), metadata=auth("z"))  # type: ignore[arg-type]
    )
    assert failure.violations == {"status": "is not a known value"}

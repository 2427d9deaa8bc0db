"""A first call to favorited from Python (asyncio).

Start the service with `favorited dev` (or ./scripts/dev) in another terminal, copy the caller
token from its banner, then, from the repository root:

    FAVORITED_TOKEN=<token> uv run python clients/python/examples/quickstart.py

FAVORITED_ADDRESS defaults to localhost:50051. Outside this repository, `pip install
clients/python` (the `favorited-api` distribution) is all this needs.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import grpc

from favorited_api.client import FavoritedError, create_aio_channel, raise_favorited_errors
from favorited_api.v1 import livestream_pb2, participant_pb2
from favorited_api.v1 import livestream_service_pb2 as ls
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_service_pb2 as ps
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc


async def main() -> int:
    address = os.environ.get("FAVORITED_ADDRESS", "localhost:50051")
    token = os.environ.get("FAVORITED_TOKEN")
    if not token:
        print("set FAVORITED_TOKEN to a caller token (see the `favorited dev` banner)")
        return 2
    async with create_aio_channel(address, token=token) as channel:
        livestreams = ls_grpc.LivestreamServiceStub(channel)
        participants = ps_grpc.ParticipantServiceStub(channel)

        with raise_favorited_errors():
            # request_id makes a retry of this exact call safe: it returns the same livestream.
            created = await livestreams.CreateLivestream(
                ls.CreateLivestreamRequest(
                    livestream=livestream_pb2.Livestream(
                        room_name=f"quickstart-{uuid.uuid4().hex[:8]}", title="Quickstart"
                    ),
                    request_id=str(uuid.uuid4()),
                ),
                timeout=10,
            )
            stream = created.livestream
            status = livestream_pb2.LivestreamStatus.Name(stream.status)
            print(f"created {stream.id} in room {stream.room_name}: {status}")

            # Join as the host: the answer carries a LiveKit token and URL for the room.
            joined = await participants.JoinLivestream(
                ps.JoinLivestreamRequest(
                    livestream_id=stream.id,
                    display_name="Quickstart host",
                    role=participant_pb2.PARTICIPANT_ROLE_HOST,
                ),
                timeout=10,
            )
            role = participant_pb2.ParticipantRole.Name(joined.participant.role)
            print(f"joined as {role}; LiveKit at {joined.url}")

            # Get/List calls are retried automatically if the server answers UNAVAILABLE.
            page = await livestreams.ListLivestreams(
                ls.ListLivestreamsRequest(
                    status=livestream_pb2.LIVESTREAM_STATUS_LIVE, page_size=10
                ),
                timeout=10,
            )
            print(f"{len(page.livestreams)} live livestream(s) on the first page")

        # Errors: branch on the stable ErrorInfo reason, never on the message.
        try:
            with raise_favorited_errors():
                await livestreams.GetLivestream(
                    ls.GetLivestreamRequest(livestream_id=str(uuid.uuid4())), timeout=10
                )
        except FavoritedError as exc:
            if exc.code != grpc.StatusCode.NOT_FOUND:
                raise
            print(f"a random id: {exc.code.name} {exc.reason}")

        # End it: the LiveKit room is deleted and every participant leaves.
        with raise_favorited_errors():
            ended = await livestreams.DeleteLivestream(
                ls.DeleteLivestreamRequest(livestream_id=stream.id), timeout=10
            )
        print(f"ended: {livestream_pb2.LivestreamStatus.Name(ended.livestream.status)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

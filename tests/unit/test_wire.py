"""The serializer of streams that send some messages serialized once for many streams."""

from __future__ import annotations

from favorited.api.wire import passing_bytes
from favorited_api.v1 import participant_service_pb2 as ppb


def test_bytes_are_sent_as_they_are_and_messages_are_serialized() -> None:
    serialize = passing_bytes(ppb.WatchParticipantsResponse.SerializeToString)
    assert serialize is not None
    message = ppb.WatchParticipantsResponse(heartbeat=ppb.WatchParticipantsHeartbeat(sequence=7))
    once = message.SerializeToString()
    assert serialize(once) is once  # not copied, not serialized again
    assert ppb.WatchParticipantsResponse.FromString(serialize(message)) == message


def test_a_method_without_serializer_keeps_none() -> None:
    # grpc then sends the handler's bytes itself.
    assert passing_bytes(None) is None

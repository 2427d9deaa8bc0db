"""The watch readers' view of a WatchParticipants message reads the real messages' sequences."""

from __future__ import annotations

from google.protobuf import struct_pb2

from bench import sequences
from favorited_api.v1 import participant_pb2 as pp
from favorited_api.v1 import participant_service_pb2 as ppb


def _event(sequence: int) -> ppb.ParticipantEvent:
    # Everything a real change carries, so the fields the readers skip are on the wire.
    event = ppb.ParticipantEvent(
        sequence=sequence,
        type=ppb.PARTICIPANT_EVENT_TYPE_JOINED,
        participant=pp.Participant(
            id="0b7c7a4e-0000-4000-8000-000000000001",
            user_id=f"user-{sequence}",
            display_name="Viewer",
            livekit_participant_sid="PA_x",
            connected=True,
        ),
        details=struct_pb2.Struct(),
    )
    event.participant.metadata.update({"seat": sequence})
    event.event_time.GetCurrentTime()
    event.participant.join_time.GetCurrentTime()
    return event


def test_a_batch_reads_as_its_sequences_in_order() -> None:
    batch = ppb.WatchParticipantsResponse(
        changes=ppb.ParticipantEvents(events=[_event(s) for s in (7, 8, 9)])
    )
    read = sequences.parse(batch.SerializeToString())
    assert read.WhichOneof("event") == "changes"
    assert [e.sequence for e in read.changes.events] == [7, 8, 9]


def test_a_single_change_a_snapshot_and_a_heartbeat() -> None:
    change = sequences.parse(ppb.WatchParticipantsResponse(change=_event(42)).SerializeToString())
    assert (change.WhichOneof("event"), change.change.sequence) == ("change", 42)
    snapshot = sequences.parse(
        ppb.WatchParticipantsResponse(
            snapshot=ppb.ParticipantSnapshot(
                participants=[_event(1).participant], sequence=5, complete=True
            )
        ).SerializeToString()
    )
    assert snapshot.HasField("snapshot")
    assert (snapshot.snapshot.sequence, snapshot.snapshot.complete) == (5, True)
    heartbeat = sequences.parse(
        ppb.WatchParticipantsResponse(
            heartbeat=ppb.WatchParticipantsHeartbeat(sequence=5)
        ).SerializeToString()
    )
    assert heartbeat.WhichOneof("event") is None  # readers skip it

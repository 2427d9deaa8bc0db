"""What the watch scenarios' readers parse of a WatchParticipants message: the sequences.

A reader checks that every change arrives once and in order and times its arrival; it never
looks at a participant. Parsing the whole message built every participant, timestamp and details
struct of a batch (8.1 µs for 30 changes) only to read their sequence numbers; this message type
declares the fields the readers read, with the same numbers as favorited.v1's, so protobuf skips
the rest (2.4 µs). The readers share the two cores with the server, and at 10,000 watchers they
were what limited the measured latency (docs/performance.md, session 9).

Built at import from a descriptor, not generated: it is the bench's own view of the wire format,
and `tests/bench/test_sequences.py` checks it against the real messages.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

METHOD = "/favorited.v1.ParticipantService/WatchParticipants"

_F = descriptor_pb2.FieldDescriptorProto


def _build() -> Any:
    proto = descriptor_pb2.FileDescriptorProto(
        name="bench/sequences.proto", package="bench.sequences", syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int, str]) -> descriptor_pb2.DescriptorProto:
        declared = proto.message_type.add(name=name)
        for field_name, number, kind, type_name in fields:
            field = declared.field.add(
                name=field_name, number=number, type=kind, label=_F.LABEL_OPTIONAL
            )
            if type_name:
                field.type_name = f".bench.sequences.{type_name}"
        return declared

    # The numbers are favorited.v1's (participant_service.proto).
    message("Event", ("sequence", 1, _F.TYPE_INT64, ""))
    events = message("Events", ("events", 1, _F.TYPE_MESSAGE, "Event"))
    events.field[0].label = _F.LABEL_REPEATED
    message("Snapshot", ("sequence", 2, _F.TYPE_INT64, ""), ("complete", 3, _F.TYPE_BOOL, ""))
    response = message(
        "Response",
        ("snapshot", 1, _F.TYPE_MESSAGE, "Snapshot"),
        ("change", 2, _F.TYPE_MESSAGE, "Event"),
        # heartbeat (3) is left out: a reader skips it, and WhichOneof says None.
        ("changes", 4, _F.TYPE_MESSAGE, "Events"),
    )
    response.oneof_decl.add(name="event")
    for field in response.field:
        field.oneof_index = 0
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("bench.sequences.Response"))


_RESPONSE = _build()


def parse(data: bytes) -> Any:
    """A WatchParticipantsResponse's `snapshot.sequence`/`complete`, `change.sequence` and
    `changes.events[].sequence`, with WhichOneof("event") as on the real message (None for a
    heartbeat)."""
    return _RESPONSE.FromString(data)

"""Proto ↔ domain translation, and request validation into domain inputs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2

from favorited.domain import models, rules
from favorited.domain.livestreams import ListLivestreamsQuery
from favorited.domain.participants import JoinRequest, ListParticipantsQuery
from favorited_api.v1 import livestream_pb2, livestream_service_pb2, participant_pb2
from favorited_api.v1 import participant_service_pb2 as ps

E = TypeVar("E")

LIVESTREAM_STATUS = {
    models.LivestreamStatus.SCHEDULED: livestream_pb2.LIVESTREAM_STATUS_SCHEDULED,
    models.LivestreamStatus.LIVE: livestream_pb2.LIVESTREAM_STATUS_LIVE,
    models.LivestreamStatus.ENDED: livestream_pb2.LIVESTREAM_STATUS_ENDED,
    models.LivestreamStatus.ERROR: livestream_pb2.LIVESTREAM_STATUS_ERROR,
}
ROLE = {
    models.Role.HOST: participant_pb2.PARTICIPANT_ROLE_HOST,
    models.Role.VIEWER: participant_pb2.PARTICIPANT_ROLE_VIEWER,
}
PARTICIPANT_STATUS = {
    models.ParticipantStatus.JOINED: participant_pb2.PARTICIPANT_STATUS_JOINED,
    models.ParticipantStatus.LEFT: participant_pb2.PARTICIPANT_STATUS_LEFT,
}
UPDATABLE = ("title", "description", "metadata", "max_participants", "empty_timeout")
_OUTPUT_ONLY = frozenset(
    {
        "id",
        "status",
        "created_by",
        "create_time",
        "update_time",
        "start_time",
        "end_time",
        "viewer_count",
        "peak_viewer_count",
        "unique_viewer_count",
        "livekit_room_sid",
    }
)


def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def _struct(value: models.JsonObject) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


def _from_struct(value: struct_pb2.Struct) -> models.JsonObject:
    result: dict[str, Any] = json_format.MessageToDict(value)
    return result


def livestream_to_proto(ls: models.Livestream) -> livestream_pb2.Livestream:
    return livestream_pb2.Livestream(
        id=ls.id,
        room_name=ls.room_name,
        title=ls.title,
        description=ls.description,
        status=LIVESTREAM_STATUS[ls.status],
        created_by=ls.created_by,
        max_participants=ls.max_participants,
        empty_timeout=duration_pb2.Duration(seconds=ls.empty_timeout_s),
        metadata=_struct(ls.metadata),
        create_time=_timestamp(ls.create_time),
        update_time=_timestamp(ls.update_time),
        start_time=_timestamp(ls.start_time),
        end_time=_timestamp(ls.end_time),
        viewer_count=ls.viewer_count,
        peak_viewer_count=ls.peak_viewer_count,
        unique_viewer_count=ls.unique_viewer_count,
        livekit_room_sid=ls.livekit_room_sid or "",
    )


def participant_to_proto(p: models.Participant) -> participant_pb2.Participant:
    return participant_pb2.Participant(
        id=p.id,
        livestream_id=p.livestream_id,
        user_id=p.user_id,
        display_name=p.display_name,
        role=ROLE[p.role],
        status=PARTICIPANT_STATUS[p.status],
        metadata=_struct(p.metadata),
        join_time=_timestamp(p.join_time),
        leave_time=_timestamp(p.leave_time),
        livekit_participant_sid=p.livekit_participant_sid or "",
        livekit_room_sid=p.livekit_room_sid or "",
        connected=p.connected,
    )


def _enum_filter(v: rules.Violations, field: str, value: int, table: Mapping[E, int]) -> E | None:
    if value == 0:
        return None
    for domain_value, proto_value in table.items():
        if proto_value == value:
            return domain_value
    v.add(field, "is not a known value")
    return None


def livestream_id(field: str, value: str) -> str:
    v = rules.Violations()
    v.uuid(field, value)
    v.raise_if_any()
    return value


def new_livestream(
    req: livestream_service_pb2.CreateLivestreamRequest,
) -> tuple[models.NewLivestream, str | None]:
    v = rules.Violations()
    ls = req.livestream
    room_name = rules.room_name(v, "livestream.room_name", ls.room_name)
    v.text("livestream.title", ls.title, required=True, max_len=rules.TITLE_MAX)
    v.text("livestream.description", ls.description, required=False, max_len=rules.DESCRIPTION_MAX)
    max_participants = rules.max_participants(
        v, "livestream.max_participants", ls.max_participants, default=True
    )
    empty_timeout_s = rules.EMPTY_TIMEOUT_DEFAULT_S
    if ls.HasField("empty_timeout"):
        empty_timeout_s = rules.empty_timeout(
            v, "livestream.empty_timeout", ls.empty_timeout.seconds, ls.empty_timeout.nanos
        )
    metadata = _from_struct(ls.metadata)
    v.metadata("livestream.metadata", metadata)
    request_id = rules.request_id(v, "request_id", req.request_id)
    v.raise_if_any()
    new = models.NewLivestream(
        room_name=room_name,
        title=ls.title,
        description=ls.description,
        max_participants=max_participants,
        empty_timeout_s=empty_timeout_s,
        metadata=metadata,
    )
    return new, request_id


def livestream_changes(
    req: livestream_service_pb2.UpdateLivestreamRequest,
) -> tuple[str, models.LivestreamChanges]:
    """Apply AIP-134/161 field-mask rules: empty mask = set fields, `*` = every updatable one."""
    v = rules.Violations()
    ls = req.livestream
    v.uuid("livestream.id", ls.id)
    paths = list(req.update_mask.paths)
    if paths == ["*"]:
        chosen = set(UPDATABLE)
    elif paths:
        chosen = set()
        for path in paths:
            if path in UPDATABLE:
                chosen.add(path)
            elif path == "room_name":
                v.add("update_mask", "room_name is immutable")
            elif path not in _OUTPUT_ONLY:
                v.add("update_mask", f"unknown field {path!r}")
    else:
        chosen = {
            name
            for name, is_set in (
                ("title", bool(ls.title)),
                ("description", bool(ls.description)),
                ("metadata", ls.HasField("metadata")),
                ("max_participants", ls.max_participants != 0),
                ("empty_timeout", ls.HasField("empty_timeout")),
            )
            if is_set
        }
    changes: dict[str, Any] = {}
    if "title" in chosen:
        v.text("livestream.title", ls.title, required=True, max_len=rules.TITLE_MAX)
        changes["title"] = ls.title
    if "description" in chosen:
        v.text(
            "livestream.description", ls.description, required=False, max_len=rules.DESCRIPTION_MAX
        )
        changes["description"] = ls.description
    if "metadata" in chosen:
        changes["metadata"] = _from_struct(ls.metadata)
        v.metadata("livestream.metadata", changes["metadata"])
    if "max_participants" in chosen:
        changes["max_participants"] = rules.max_participants(
            v, "livestream.max_participants", ls.max_participants, default=False
        )
    if "empty_timeout" in chosen:
        changes["empty_timeout_s"] = (
            rules.empty_timeout(
                v, "livestream.empty_timeout", ls.empty_timeout.seconds, ls.empty_timeout.nanos
            )
            if ls.HasField("empty_timeout")
            else rules.EMPTY_TIMEOUT_DEFAULT_S
        )
    result = models.LivestreamChanges(**changes)
    if result.is_empty() and not v:
        v.add("update_mask", "names no field to change")
    v.raise_if_any()
    return ls.id, result


def list_livestreams_query(
    req: livestream_service_pb2.ListLivestreamsRequest,
) -> ListLivestreamsQuery:
    v = rules.Violations()
    size = rules.page_size(v, "page_size", req.page_size)
    status = _enum_filter(v, "status", req.status, LIVESTREAM_STATUS)
    v.text("created_by", req.created_by, required=False, max_len=rules.USER_ID_MAX)
    v.raise_if_any()
    return ListLivestreamsQuery(
        page_size=size,
        page_token=req.page_token,
        status=status,
        created_by=req.created_by or None,
    )


def join_request(req: ps.JoinLivestreamRequest) -> JoinRequest:
    v = rules.Violations()
    v.uuid("livestream_id", req.livestream_id)
    v.text("display_name", req.display_name, required=True, max_len=rules.DISPLAY_NAME_MAX)
    role = models.Role.VIEWER
    if req.role != participant_pb2.PARTICIPANT_ROLE_UNSPECIFIED:
        role = _enum_filter(v, "role", req.role, ROLE) or models.Role.VIEWER
    metadata = _from_struct(req.metadata)
    v.metadata("metadata", metadata)
    request_id = rules.request_id(v, "request_id", req.request_id)
    v.raise_if_any()
    return JoinRequest(
        livestream_id=req.livestream_id,
        display_name=req.display_name,
        role=role,
        metadata=metadata,
        request_id=request_id,
    )


def remove_request(req: ps.RemoveParticipantRequest) -> tuple[str, str]:
    v = rules.Violations()
    v.uuid("livestream_id", req.livestream_id)
    v.uuid("participant_id", req.participant_id)
    v.raise_if_any()
    return req.livestream_id, req.participant_id


def list_participants_query(req: ps.ListParticipantsRequest) -> ListParticipantsQuery:
    v = rules.Violations()
    v.uuid("livestream_id", req.livestream_id)
    size = rules.page_size(v, "page_size", req.page_size)
    status = _enum_filter(v, "status", req.status, PARTICIPANT_STATUS)
    role = _enum_filter(v, "role", req.role, ROLE)
    v.raise_if_any()
    return ListParticipantsQuery(
        livestream_id=req.livestream_id,
        page_size=size,
        page_token=req.page_token,
        status=status,
        role=role,
    )

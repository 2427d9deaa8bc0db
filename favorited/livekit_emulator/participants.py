"""Building ``ParticipantInfo`` from a verified join token (``auth.ClaimGrants``)."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from livekit import api
from livekit.protocol import models

if TYPE_CHECKING:
    from collections.abc import Mapping

    from livekit.api.access_token import Claims

_DEPENDENT_KINDS = frozenset({models.ParticipantInfo.AGENT, models.ParticipantInfo.EGRESS})

# The token spells these as lower-case strings (Go ``kindFromString`` / TrackSource names).
_KINDS: Mapping[str, models.ParticipantInfo.Kind] = MappingProxyType(
    {
        "standard": models.ParticipantInfo.STANDARD,
        "ingress": models.ParticipantInfo.INGRESS,
        "egress": models.ParticipantInfo.EGRESS,
        "sip": models.ParticipantInfo.SIP,
        "agent": models.ParticipantInfo.AGENT,
        "connector": models.ParticipantInfo.CONNECTOR,
        "bridge": models.ParticipantInfo.BRIDGE,
    }
)
_TRACK_SOURCES: Mapping[str, models.TrackSource] = MappingProxyType(
    {
        "camera": models.CAMERA,
        "microphone": models.MICROPHONE,
        "screen_share": models.SCREEN_SHARE,
        "screen_share_audio": models.SCREEN_SHARE_AUDIO,
    }
)


def kind_from_claim(kind: str) -> models.ParticipantInfo.Kind:
    """Map the token's ``kind`` claim to the enum; empty or unknown means STANDARD."""
    return _KINDS.get(kind, models.ParticipantInfo.STANDARD)


def permission_from_grants(video: api.VideoGrants) -> models.ParticipantPermission:
    """What LiveKit's ``VideoGrant.ToPermission`` derives from the token."""
    # Sources LiveKit doesn't know are dropped rather than rejected.
    requested = video.can_publish_sources or ()
    sources = [_TRACK_SOURCES[s] for s in requested if s in _TRACK_SOURCES]
    return models.ParticipantPermission(
        can_subscribe=video.can_subscribe,
        can_publish=video.can_publish,
        can_publish_data=video.can_publish_data,
        can_publish_sources=sources,
        hidden=bool(video.hidden),
        recorder=bool(video.recorder),
        can_update_metadata=bool(video.can_update_own_metadata),
        agent=bool(video.agent),
        can_subscribe_metrics=bool(video.can_subscribe_metrics),
        can_manage_agent_session=bool(video.can_manage_agent_session),
    )


def participant_from_claims(claims: Claims, *, sid: str, now_s: float) -> models.ParticipantInfo:
    """A participant that has just become ACTIVE in its room."""
    video = claims.video or api.VideoGrants()
    return models.ParticipantInfo(
        sid=sid,
        identity=claims.identity,
        name=claims.name,
        metadata=claims.metadata,
        attributes=claims.attributes or {},
        state=models.ParticipantInfo.ACTIVE,
        joined_at=int(now_s),
        joined_at_ms=int(now_s * 1000),
        permission=permission_from_grants(video),
        kind=kind_from_claim(claims.kind),
    )


def is_dependent(participant: models.ParticipantInfo) -> bool:
    """Agents, egress and recorders neither keep a room open nor count toward capacity."""
    return (
        participant.kind in _DEPENDENT_KINDS
        or participant.permission.agent
        or participant.permission.recorder
    )


def copy_of(participant: models.ParticipantInfo) -> models.ParticipantInfo:
    """A detached copy, so callers can't mutate emulator state."""
    clone = models.ParticipantInfo()
    clone.CopyFrom(participant)
    return clone

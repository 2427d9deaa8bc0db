"""The favorited error tree. Every error a caller can see is one of these.

    FavoritedError                     (base; `reason` is the stable google.rpc.ErrorInfo reason)
    ├── InvalidArgumentError           INVALID_ARGUMENT, with field violations
    ├── UnauthenticatedError           UNAUTHENTICATED
    ├── PermissionDeniedError          PERMISSION_DENIED
    ├── NotFoundError                  NOT_FOUND
    │   ├── LivestreamNotFoundError
    │   └── ParticipantNotFoundError
    ├── AlreadyExistsError             ALREADY_EXISTS
    │   ├── RoomNameTakenError
    │   └── ParticipantAlreadyJoinedError
    ├── FailedPreconditionError        FAILED_PRECONDITION
    ├── ResourceExhaustedError         RESOURCE_EXHAUSTED
    ├── AbortedError                   ABORTED (concurrent change; safe to retry)
    ├── DependencyUnavailableError     UNAVAILABLE (PostgreSQL, LiveKit)
    └── UnimplementedError             UNIMPLEMENTED

Adapters translate foreign exceptions into these at their boundary (`raise X from exc`); exactly one
place, `favorited.api.errors`, turns them into gRPC statuses. Anything else is a bug and becomes
INTERNAL with a reference id.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid request field: `field` is the proto field path, e.g. `livestream.title`."""

    field: str
    description: str


class FavoritedError(Exception):
    """Base of every error that reaches a caller with a meaningful status."""

    reason: str = "FAVORITED_ERROR"

    def __init__(self, message: str, *, reason: str | None = None, **metadata: str) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = metadata


class InvalidArgumentError(FavoritedError):
    reason = "INVALID_ARGUMENT"

    def __init__(
        self, violations: list[FieldViolation], *, reason: str | None = None, **metadata: str
    ) -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"Invalid request: {summary}", reason=reason, **metadata)
        self.violations = violations

    @classmethod
    def single(
        cls, field: str, description: str, *, reason: str | None = None
    ) -> InvalidArgumentError:
        return cls([FieldViolation(field, description)], reason=reason)


class UnauthenticatedError(FavoritedError):
    reason = "UNAUTHENTICATED"


class PermissionDeniedError(FavoritedError):
    reason = "PERMISSION_DENIED"


class NotFoundError(FavoritedError):
    reason = "NOT_FOUND"


class LivestreamNotFoundError(NotFoundError):
    reason = "LIVESTREAM_NOT_FOUND"

    def __init__(self, livestream_id: str) -> None:
        super().__init__("The livestream does not exist.", livestream=livestream_id)


class ParticipantNotFoundError(NotFoundError):
    reason = "PARTICIPANT_NOT_FOUND"

    def __init__(self, livestream_id: str, **metadata: str) -> None:
        super().__init__(
            "The participant does not exist in this livestream.",
            livestream=livestream_id,
            **metadata,
        )


class AlreadyExistsError(FavoritedError):
    reason = "ALREADY_EXISTS"


class RoomNameTakenError(AlreadyExistsError):
    reason = "LIVESTREAM_ROOM_NAME_TAKEN"

    def __init__(self, room_name: str) -> None:
        super().__init__(
            "A scheduled or live livestream already uses this room name.", room_name=room_name
        )


class ParticipantAlreadyJoinedError(AlreadyExistsError):
    reason = "PARTICIPANT_ALREADY_JOINED"

    def __init__(self, livestream_id: str, user_id: str) -> None:
        super().__init__(
            "The caller has already joined this livestream; leave first or retry with the same "
            "request_id.",
            livestream=livestream_id,
            user=user_id,
        )


class FailedPreconditionError(FavoritedError):
    reason = "FAILED_PRECONDITION"


class ResourceExhaustedError(FavoritedError):
    reason = "RESOURCE_EXHAUSTED"


class AbortedError(FavoritedError):
    reason = "ABORTED"


class DependencyUnavailableError(FavoritedError):
    """PostgreSQL or LiveKit could not be reached; the operation may be retried."""

    reason = "DEPENDENCY_UNAVAILABLE"


class UnimplementedError(FavoritedError):
    reason = "NOT_IMPLEMENTED"

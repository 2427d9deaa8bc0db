"""The one place where errors become gRPC statuses (google.rpc.Status with rich details)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from favorited import errors

DOMAIN = "favorited.v1"

# Most specific first is not needed: lookup walks the exception's MRO.
CODES: dict[type[errors.FavoritedError], grpc.StatusCode] = {
    errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.AbortedError: grpc.StatusCode.ABORTED,
    errors.DependencyUnavailableError: grpc.StatusCode.UNAVAILABLE,
    errors.UnimplementedError: grpc.StatusCode.UNIMPLEMENTED,
}


def code_for(exc: errors.FavoritedError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in CODES:
            return CODES[cls]
    return grpc.StatusCode.INTERNAL


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(exc: errors.FavoritedError) -> status_pb2.Status:
    code = code_for(exc)
    details = [
        _pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN, metadata=exc.metadata))
    ]
    if isinstance(exc, errors.InvalidArgumentError):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in exc.violations
                    ]
                )
            )
        )
    if code is grpc.StatusCode.UNAVAILABLE:
        details.append(
            _pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1)))
        )
    return status_pb2.Status(code=code.value[0], message=exc.message, details=details)


def internal_status(reference: str) -> status_pb2.Status:
    """What a caller sees of our own bug: a generic message and the id to find it in the logs."""
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL", domain=DOMAIN, metadata={"reference": reference}
    )
    return status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"Internal error (reference {reference}).",
        details=[_pack(info)],
    )

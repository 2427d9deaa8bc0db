"""Every domain error maps to a specific status, with ErrorInfo (and BadRequest) details."""

from __future__ import annotations

import grpc
from google.rpc import code_pb2, error_details_pb2

from favorited import errors
from favorited.api import errors as api_errors


def _all_subclasses(cls: type[errors.FavoritedError]) -> set[type[errors.FavoritedError]]:
    found: set[type[errors.FavoritedError]] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def test_every_error_class_maps_to_a_specific_code() -> None:
    for cls in _all_subclasses(errors.FavoritedError):
        assert any(base in api_errors.CODES for base in cls.__mro__), cls
    assert errors.FavoritedError not in api_errors.CODES  # the base alone is a bug: INTERNAL


def test_status_carries_error_info_and_field_violations() -> None:
    exc = errors.InvalidArgumentError(
        [errors.FieldViolation("title", "is required"), errors.FieldViolation("x", "bad")]
    )
    status = api_errors.to_status(exc)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info) and status.details[1].Unpack(bad)
    assert (info.reason, info.domain) == ("INVALID_ARGUMENT", "favorited.v1")
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("title", "is required"),
        ("x", "bad"),
    ]


def test_unavailable_carries_a_retry_hint_and_internal_hides_everything() -> None:
    status = api_errors.to_status(errors.DependencyUnavailableError("down", reason="X"))
    assert any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)
    internal = api_errors.internal_status("abc123")
    assert internal.code == code_pb2.INTERNAL and "abc123" in internal.message

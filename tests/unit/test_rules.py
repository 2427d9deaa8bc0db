"""Room-name sanitising and input bounds."""

from __future__ import annotations

import pytest

from favorited import errors
from favorited.domain import rules


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  My Room!! 2024 ", "my-room-2024"),
        ("a__b--c", "a__b-c"),
        ("--Edge--", "edge"),
        ("Ünïcode Straße", "n-code-stra-e"),
        ("'); DROP TABLE x; --", "drop-table-x"),
        ("!!!", ""),
        ("tab\there\nnewline", "tab-here-newline"),
    ],
)
def test_sanitize_room_name(raw: str, expected: str) -> None:
    assert rules.sanitize_room_name(raw) == expected


def test_violations_collect_every_field() -> None:
    v = rules.Violations()
    rules.room_name(v, "room_name", "!!!")
    v.text("title", "", required=True, max_len=10)
    v.text("description", "x" * 11, required=False, max_len=10)
    v.metadata("metadata", {"k": "\x00"})
    with pytest.raises(errors.InvalidArgumentError) as info:
        v.raise_if_any()
    assert [x.field for x in info.value.violations] == [
        "room_name",
        "title",
        "description",
        "metadata",
    ]


@pytest.mark.parametrize(("given", "expected"), [(0, 50), (1, 1), (100, 100), (1000, 100)])
def test_page_size_default_and_cap(given: int, expected: int) -> None:
    v = rules.Violations()
    assert rules.page_size(v, "page_size", given) == expected
    assert not v


def test_max_participants_bounds() -> None:
    v = rules.Violations()
    assert rules.max_participants(v, "f", 0, default=True) == 100
    assert not v
    rules.max_participants(v, "f", 0, default=False)
    rules.max_participants(v, "f", 10_001, default=True)
    assert len(v._items) == 2

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from favorited.livekit_emulator.ids import ALPHABET, SidPrefix, new_sid

SID_PATTERN = re.compile(r"(RM|PA|TR|EV)_[23456789A-HJ-NP-Za-km-z]{12}")


def test_alphabet_is_base57_without_lookalikes() -> None:
    assert len(ALPHABET) == len(set(ALPHABET)) == 57
    assert not set("01IOl") & set(ALPHABET)


@given(st.sampled_from(SidPrefix))
def test_new_sid_has_prefix_and_twelve_base57_chars(prefix: SidPrefix) -> None:
    sid = new_sid(prefix)

    assert sid.startswith(prefix.value)
    assert SID_PATTERN.fullmatch(sid)


def test_new_sid_is_random() -> None:
    assert len({new_sid(SidPrefix.ROOM) for _ in range(200)}) == 200

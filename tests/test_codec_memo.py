"""The codec's memo tables: repeated commands and frames take a lookup, never a wrong answer."""

from __future__ import annotations

import pytest

from firmware_profiles import Codec, ProfileError, load_profile
from firmware_profiles.commands import BadFrame, Keepalive, Reply, SetAll, SetZone
from firmware_profiles.memo import MEMO_SIZE, remember

LP4 = load_profile("lp4-ascii")
VB6 = load_profile("vb6-binary")


def test_remember_starts_again_when_full() -> None:
    table: dict[int, int] = {}
    for n in range(MEMO_SIZE + 10):
        remember(table, n, n * 2)
        assert len(table) <= MEMO_SIZE
    assert table[MEMO_SIZE + 9] == 2 * (MEMO_SIZE + 9)


@pytest.mark.parametrize("profile", [LP4, VB6], ids=lambda p: p.name)
def test_more_distinct_commands_than_the_memo_holds_still_encode_right(profile) -> None:  # type: ignore[no-untyped-def]
    codec = Codec(profile)
    zones, top = len(profile.zones), profile.intensity.max
    commands = [SetZone(n % zones, n % (top + 1)) for n in range(3 * MEMO_SIZE)]
    first = [codec.encode(c) for c in commands]
    fresh = Codec(profile)
    assert first == [fresh.encode(c) for c in commands]
    again = [codec.encode(c) for c in reversed(commands)]
    assert again == first[::-1]
    lease = profile.limits.lease_s if codec.leased("set_zone") else None
    parser = codec.command_parser()
    decoded = [item for frame in first for item in parser.feed(frame)]
    assert decoded == [SetZone(c.zone, c.level, lease) for c in commands]


def test_a_refused_command_is_refused_every_time() -> None:
    codec = Codec(VB6)
    for _ in range(2):
        with pytest.raises(ProfileError):
            codec.encode(SetZone(0, 256))


def test_levels_as_a_list_encode_like_the_tuple() -> None:
    codec = Codec(VB6)
    levels = (0, 10, 255, 0, 1, 2)
    expected = codec.encode(SetAll(levels))
    assert codec.encode(SetAll(list(levels))) == expected  # type: ignore[arg-type]
    assert codec.encode(SetAll(levels)) == expected


def test_something_that_is_no_command_is_refused_even_when_unhashable() -> None:
    codec = Codec(LP4)
    with pytest.raises(ProfileError, match="is not a command"):
        codec.encode([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ProfileError, match="is not a command"):
        codec.encode(7)  # type: ignore[arg-type]


def test_reply_fields_are_never_shared_between_feeds() -> None:
    codec = Codec(LP4)
    status = Reply("status", {"level0": 1, "level1": 2, "level2": 3, "level3": 4,
                              "frequency": 2, "heat": 0})
    data = codec.encode_reply(status)
    parser = codec.reply_parser()
    for _ in range(3):  # the first feed parses, the others hit the memo
        got = parser.feed(data)
        assert got == [status]
        got[0].fields["level0"] = 99  # a careless consumer
    assert codec.reply_parser().feed(data) == [status]


def test_encoded_replies_follow_their_fields() -> None:
    codec = Codec(VB6)
    a = Reply("nak", {"code": 3})
    b = Reply("nak", {"code": 4})
    assert codec.encode_reply(a) != codec.encode_reply(b)
    assert codec.reply_parser().feed(codec.encode_reply(a) + codec.encode_reply(b)) == [a, b]


@pytest.mark.parametrize("profile", [LP4, VB6], ids=lambda p: p.name)
def test_a_pending_partial_frame_bypasses_the_memo(profile) -> None:  # type: ignore[no-untyped-def]
    codec = Codec(profile)
    frame = codec.encode(SetZone(1, 4))
    parser = codec.command_parser()
    assert parser.feed(frame) == [SetZone(1, 4, profile.limits.lease_s)]  # now remembered
    assert parser.feed(frame[:3]) == []
    out = parser.feed(frame)  # the same bytes, but they now complete a different chunk
    assert out != [SetZone(1, 4, profile.limits.lease_s)]
    assert any(isinstance(item, BadFrame) for item in out)


@pytest.mark.parametrize("profile", [LP4, VB6], ids=lambda p: p.name)
def test_a_chunk_that_leaves_bytes_pending_is_not_remembered(profile) -> None:  # type: ignore[no-untyped-def]
    codec = Codec(profile)
    one, two = codec.encode(Keepalive()), codec.encode(SetZone(2, 3))
    chunk, rest = one + two[:4], two[4:]
    lease = profile.limits.lease_s
    for _ in range(2):
        parser = codec.command_parser()
        assert parser.feed(chunk) == [Keepalive()]
        assert parser.feed(rest) == [SetZone(2, 3, lease)]


def test_bad_frames_are_reported_every_time() -> None:
    codec = Codec(VB6)
    frame = bytearray(codec.encode(SetZone(1, 4)))
    frame[-1] ^= 0xFF
    parser = codec.command_parser()
    for _ in range(2):
        (item,) = parser.feed(bytes(frame))
        assert isinstance(item, BadFrame) and item.reason == "bad checksum"

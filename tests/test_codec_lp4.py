"""lp4-ascii golden frames: hand-computed text and xor8 checksums, replies, bad input."""

from __future__ import annotations

import pytest

from firmware_profiles import Codec, ProfileError, load_profile
from firmware_profiles.commands import (
    BadFrame,
    Command,
    Keepalive,
    Press,
    Query,
    Reply,
    SetAll,
    SetFrequency,
    SetHeat,
    SetZone,
    Stop,
)

CODEC = Codec(load_profile("lp4-ascii"))

# xor8 of the text before the checksum digits, '*' included, worked out byte by byte:
#   "Z1L05T15*": 5A^31=6B ^4C=27 ^30=17 ^35=22 ^54=76 ^31=47 ^35=72 ^2A=58
#   "Z4L10T15*": 5A^34=6E ^4C=22 ^31=13 ^30=23 ^54=77 ^31=46 ^35=73 ^2A=59
#   "Z2L00T07*": 5A^32=68 ^4C=24 ^30=14 ^30=24 ^54=70 ^30=40 ^37=77 ^2A=5D
#   "F3*": 46^33=75 ^2A=5F    "H2*": 48^32=7A ^2A=50    "X*": 58^2A=72
#   "PING*": 50^49=19 ^4E=57 ^47=10 ^2A=3A    "Q*": 51^2A=7B
GOLDEN: list[tuple[Command, bytes]] = [
    (SetZone(0, 5, 1.5), b"Z1L05T15*58\r\n"),
    (SetZone(3, 10, 1.5), b"Z4L10T15*59\r\n"),
    (SetZone(1, 0, 0.7), b"Z2L00T07*5D\r\n"),
    (SetFrequency(3), b"F3*5F\r\n"),
    (SetHeat(2), b"H2*50\r\n"),
    (Stop(), b"X*72\r\n"),
    (Keepalive(), b"PING*3A\r\n"),
    (Query(), b"Q*7B\r\n"),
]


@pytest.mark.parametrize(("command", "frame"), GOLDEN)
def test_golden_command(command: Command, frame: bytes) -> None:
    assert CODEC.encode(command) == frame
    assert CODEC.command_parser().feed(frame) == [command]


def test_lease_defaults_to_profile_lease() -> None:
    assert CODEC.encode(SetZone(0, 5)) == b"Z1L05T15*58\r\n"  # lease_s = 1.5 -> 15 tenths
    assert CODEC.leased("set_zone")


def test_lease_rounds_down_to_tenths() -> None:
    assert CODEC.encode(SetZone(1, 0, 0.79)) == b"Z2L00T07*5D\r\n"


GOLDEN_REPLIES = [
    (Reply("ack"), b"OK\r\n"),
    (Reply("nak", {"code": 3}), b"ERR3\r\n"),
    (Reply("nak", {"code": 42}), b"ERR42\r\n"),
    (
        Reply("status", {"level0": 1, "level1": 2, "level2": 3, "level3": 10,
                         "frequency": 2, "heat": 1}),
        b"S01,02,03,10F2H1\r\n",
    ),
]


@pytest.mark.parametrize(("reply", "frame"), GOLDEN_REPLIES)
def test_golden_reply(reply: Reply, frame: bytes) -> None:
    assert CODEC.encode_reply(reply) == frame
    assert CODEC.reply_parser().feed(frame) == [reply]


def test_missing_frames_refuse_to_encode() -> None:
    with pytest.raises(ProfileError, match="no 'set_all' frame"):
        CODEC.encode(SetAll((1, 2, 3, 4)))
    with pytest.raises(ProfileError, match=r"press\.next_mode"):
        CODEC.encode(Press("next_mode"))


@pytest.mark.parametrize(
    ("command", "match"),
    [
        (SetZone(0, 11), "level = 11 is outside 0..10"),
        (SetZone(4, 1), "zone = 4 is outside 0..3"),
        (SetZone(0, -1), "outside"),
        (SetFrequency(6), "not one of"),
        (SetHeat(4), "outside 0..3"),
        (SetZone(0, 1, 10.0), "does not fit"),  # 100 tenths in a 2-digit field
    ],
)
def test_out_of_range_values_raise(command: Command, match: str) -> None:
    with pytest.raises(ProfileError, match=match):
        CODEC.encode(command)


def test_unchecked_codec_still_refuses_what_does_not_fit() -> None:
    loose = Codec(load_profile("lp4-ascii"), check_values=False)
    assert loose.encode(SetZone(0, 11, 1.5)).startswith(b"Z1L11T15*")
    with pytest.raises(ProfileError, match="does not fit"):
        loose.encode(SetZone(0, 100, 1.5))


def test_bad_checksum_is_a_bad_frame_then_resync() -> None:
    parser = CODEC.command_parser()
    out = parser.feed(b"Z1L05T15*59\r\nPING*3A\r\n")
    assert isinstance(out[0], BadFrame) and out[0].reason == "bad checksum"
    assert out[0].data == b"Z1L05T15*59\r\n"
    assert out[1:] == [Keepalive()]


def test_garbage_lines_and_overlong_garbage() -> None:
    parser = CODEC.command_parser()
    out = parser.feed(b"hello\r\nZ1L05T15*58\r\n\r\n")
    assert isinstance(out[0], BadFrame) and out[0].reason == "unknown frame"
    assert out[1:] == [SetZone(0, 5, 1.5)]
    out = parser.feed(b"\xff" * 300)
    assert len(out) == 1 and isinstance(out[0], BadFrame) and out[0].reason == "line too long"
    assert parser.feed(b"\r\nX*72\r\n") == [Stop()]


def test_lower_case_checksum_is_rejected() -> None:
    out = CODEC.command_parser().feed(b"Q*7b\r\n")
    assert len(out) == 1 and isinstance(out[0], BadFrame)

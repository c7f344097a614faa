"""remote-stepper golden frames: A5 | button | sum8; status 5A 10 level mode heat sum8."""

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
    SetMode,
    SetZone,
    Stop,
)
from protocols.techniques import Technique

PROFILE = load_profile("remote-stepper")
CODEC = Codec(PROFILE)

# sum8 of the first two bytes: A5 + 01 = A6, A5 + 02 = A7, ... A5 + 00 = A5.
GOLDEN: list[tuple[Command, bytes]] = [
    (Stop(), b"\xa5\x00\xa5"),
    (Press("intensity_up"), b"\xa5\x01\xa6"),
    (Press("intensity_down"), b"\xa5\x02\xa7"),
    (Press("next_mode"), b"\xa5\x03\xa8"),
    (Press("heat_toggle"), b"\xa5\x04\xa9"),
    (Query(), b"\xa5\x05\xaa"),
]


@pytest.mark.parametrize(("command", "frame"), GOLDEN)
def test_golden_command(command: Command, frame: bytes) -> None:
    assert CODEC.encode(command) == frame
    assert CODEC.command_parser().feed(frame) == [command]


def test_golden_status() -> None:
    # 5A + 10 + 03 + 02 + 01 = 0x70
    reply = Reply("status", {"level": 3, "mode": 2, "heat": 1})
    frame = b"\x5a\x10\x03\x02\x01\x70"
    assert CODEC.encode_reply(reply) == frame
    assert CODEC.reply_parser().feed(frame) == [reply]
    # 5A + 10 + 05 + 05 + 00 = 0x74
    assert CODEC.encode_reply(Reply("status", {"level": 5, "mode": 5, "heat": 0})).endswith(
        b"\x74"
    )


def test_stepping_profile_shape() -> None:
    assert PROFILE.control == "stepping"
    assert PROFILE.intensity.max == 5
    assert len(PROFILE.zones) == 1 and PROFILE.zones[0].covers[0] == "paravertebral_left"
    assert list(PROFILE.modes) == ["knead", "roll", "tap", "vibrate", "shiatsu"]
    assert {str(t) for t in Technique} == set(PROFILE.technique_modes)
    assert PROFILE.technique_mode(Technique.VIBRATION_INTERMITTENT) == PROFILE.modes["tap"]
    assert PROFILE.limits.watchdog_s is None and PROFILE.limits.auto_off_s == 900
    assert PROFILE.supports("press.next_mode") and PROFILE.supports("status")
    assert not PROFILE.supports("set_zone") and not PROFILE.supports("ack")


@pytest.mark.parametrize("command", [SetZone(0, 1), SetMode(1), Keepalive(), Press("power")])
def test_frames_it_lacks(command: Command) -> None:
    with pytest.raises(ProfileError, match="has no"):
        CODEC.encode(command)
    with pytest.raises(ProfileError, match="no 'ack' reply"):
        CODEC.encode_reply(Reply("ack"))


def test_bad_sum_and_garbage() -> None:
    parser = CODEC.command_parser()
    out = parser.feed(b"\x01\x02\xa5\x01\xa7\xa5\x03\xa8")
    assert out == [BadFrame(b"\x01\x02", "garbage"), BadFrame(b"\xa5\x01\xa7", "bad checksum"),
                   Press("next_mode")]


def test_every_press_counts_in_one_feed() -> None:
    up = GOLDEN[1][1]
    assert CODEC.command_parser().feed(up * 3) == [Press("intensity_up")] * 3

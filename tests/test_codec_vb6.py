"""vb6-binary golden frames: header, length, command id, motor mask, CRC16-MODBUS low byte first."""

from __future__ import annotations

import pytest

from firmware_profiles import Codec, ProfileError, load_profile
from firmware_profiles.commands import (
    BadFrame,
    Command,
    Keepalive,
    Query,
    Reply,
    SetAll,
    SetFrequency,
    SetHeat,
    SetZone,
    Stop,
)

PROFILE = load_profile("vb6-binary")
CODEC = Codec(PROFILE)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# Layout: AA 55 | len = bytes after it before the CRC | id | payload | CRC lo, hi.
# set_all: mask then 6 levels. Levels (0,10,255,0,1,2): zones 1,2,4,5 run; their motors are
# 1 | 2,3 | 5 | 6,7 -> bits 1,2,3,5,6,7 = 0xEE. len = id + mask + 6 levels = 8.
# set_frequency 300 = 0x012C big-endian; 600 = 0x0258.
GOLDEN: list[tuple[Command, bytes]] = [
    (SetAll((0, 10, 255, 0, 1, 2)), h("aa 55 08 01 ee 00 0a ff 00 01 02 b6 29")),
    (SetAll((0, 0, 0, 0, 0, 0)), h("aa 55 08 01 00 00 00 00 00 00 00 90 63")),
    (SetZone(2, 128), h("aa 55 03 02 02 80 b5 59")),
    (SetZone(5, 255), h("aa 55 03 02 05 ff f6 89")),
    (SetFrequency(300), h("aa 55 03 03 01 2c e4 14")),
    (SetFrequency(600), h("aa 55 03 03 02 58 e4 c3")),
    (Stop(), h("aa 55 01 04 31 bf")),
    (Keepalive(), h("aa 55 01 05 f0 7f")),
    (Query(), h("aa 55 01 06 b0 7e")),
]
GOLDEN_REPLIES = [
    (Reply("ack"), h("aa 55 01 80 31 dc")),
    (Reply("nak", {"code": 3}), h("aa 55 02 81 03 ac 45")),
    (
        Reply("status", {"level0": 1, "level1": 2, "level2": 3, "level3": 10, "level4": 0,
                         "level5": 9, "frequency": 600}),
        h("aa 55 09 82 01 02 03 0a 00 09 02 58 ed 39"),
    ),
]


def _crc16_modbus_bitwise(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


@pytest.mark.parametrize("frame", [f for _, f in GOLDEN + GOLDEN_REPLIES])
def test_golden_crc_is_right_by_an_independent_reference(frame: bytes) -> None:
    assert int.from_bytes(frame[-2:], "little") == _crc16_modbus_bitwise(frame[:-2])
    assert frame[2] == len(frame) - 5  # length byte: id + payload


@pytest.mark.parametrize(("command", "frame"), GOLDEN)
def test_golden_command(command: Command, frame: bytes) -> None:
    assert CODEC.encode(command) == frame
    assert CODEC.command_parser().feed(frame) == [command]


@pytest.mark.parametrize(("reply", "frame"), GOLDEN_REPLIES)
def test_golden_reply(reply: Reply, frame: bytes) -> None:
    assert CODEC.encode_reply(reply) == frame
    assert CODEC.reply_parser().feed(frame) == [reply]


def test_profile_numbers() -> None:
    assert PROFILE.intensity.max == 255
    assert PROFILE.frequency is not None
    assert PROFILE.frequency.to_device(50.05) == 300
    assert PROFILE.frequency.to_device(50.09) == 300  # never rounds up
    assert PROFILE.frequency.from_device(300) == pytest.approx(50.0)
    assert PROFILE.frequency.to_device(5) == 0 and PROFILE.frequency.to_device(500) == 600
    assert PROFILE.heat is None and not PROFILE.supports("set_heat")
    assert PROFILE.zone_index("legs") == 5
    assert PROFILE.zones[5].covers == ("hips", "calves")
    assert not CODEC.leased("set_all")


def test_encode_refusals() -> None:
    with pytest.raises(ProfileError, match="needs 6 levels"):
        CODEC.encode(SetAll((1, 2, 3)))
    with pytest.raises(ProfileError, match=r"outside 0\.\.255"):
        CODEC.encode(SetAll((0, 0, 256, 0, 0, 0)))
    with pytest.raises(ProfileError, match=r"outside 0\.\.600"):
        CODEC.encode(SetFrequency(601))
    with pytest.raises(ProfileError, match="no 'set_heat' frame"):
        CODEC.encode(SetHeat(1))
    with pytest.raises(ProfileError, match="needs a value for 'level1'"):
        CODEC.encode_reply(Reply("status", {"level0": 1}))


def test_unchecked_codec_never_wraps_a_byte() -> None:
    loose = Codec(PROFILE, check_values=False)
    with pytest.raises(ProfileError, match="does not fit"):
        loose.encode(SetZone(0, 256))
    with pytest.raises(ProfileError, match="does not fit"):
        loose.encode(SetFrequency(70000))
    frame = loose.encode(SetZone(6, 1))  # zone 6 does not exist; a simulator test may send it
    assert CODEC.command_parser().feed(frame) == [SetZone(6, 1)]


def test_bad_checksum_then_resync() -> None:
    bad = bytearray(GOLDEN[0][1])
    bad[-1] ^= 0x01
    out = CODEC.command_parser().feed(bytes(bad) + GOLDEN[6][1])
    assert out == [BadFrame(bytes(bad), "bad checksum"), Stop()]


def test_flipped_payload_bit_is_caught() -> None:
    bad = bytearray(GOLDEN[2][1])
    bad[5] ^= 0x10
    out = CODEC.command_parser().feed(bytes(bad))
    assert len(out) == 1 and isinstance(out[0], BadFrame) and out[0].reason == "bad checksum"


def test_garbage_before_and_between_frames() -> None:
    stop, keep = GOLDEN[6][1], GOLDEN[7][1]
    out = CODEC.command_parser().feed(b"\x00\x13\x37" + stop + b"\xaa\x00" + keep)
    assert out == [BadFrame(b"\x00\x13\x37", "garbage"), Stop(),
                   BadFrame(b"\xaa\x00", "garbage"), Keepalive()]


def test_truncated_frame_followed_by_a_good_one() -> None:
    whole = GOLDEN[0][1]
    out = CODEC.command_parser().feed(whole[:5] + whole)
    assert out == [BadFrame(whole[:5], "bad checksum"), GOLDEN[0][0]]


def test_header_prefix_waits_for_more_bytes() -> None:
    parser = CODEC.command_parser()
    frame = GOLDEN[3][1]
    assert parser.feed(b"\x99" + frame[:1]) == [BadFrame(b"\x99", "garbage")]
    assert parser.feed(frame[1:4]) == []
    assert parser.feed(frame[4:]) == [GOLDEN[3][0]]


def test_inconsistent_motor_mask_is_a_bad_frame() -> None:
    loose = Codec(PROFILE, check_values=False)
    frame = bytearray(loose.encode(SetAll((1, 0, 0, 0, 0, 0))))
    frame[4] = 0x02  # mask says zone 1 runs, levels say zone 0
    crc = _crc16_modbus_bitwise(bytes(frame[:-2]))
    frame[-2:] = crc.to_bytes(2, "little")
    out = CODEC.command_parser().feed(bytes(frame))
    assert len(out) == 1 and isinstance(out[0], BadFrame) and "mask" in out[0].reason

"""The plain binary fast path against the datasheet and against the generic slot-by-slot path."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_profiles import Codec, ProfileError, load_profile
from firmware_profiles.binary_template import BinaryFrame
from firmware_profiles.checksums import CHECKSUMS, CHECKSUMS_FROM
from firmware_profiles.commands import BadFrame, Command, Reply, SetAll, SetZone
from firmware_profiles.parsers import BinaryEngine

PROFILE = load_profile("vb6-binary")
CODEC = Codec(PROFILE)
# vb6-binary.toml, in zone order: the motors of each zone.
MOTORS = ((0,), (1,), (2, 3), (4,), (5,), (6, 7))


def crc16_modbus_bitwise(data: bytes) -> int:
    """CRC-16/MODBUS as the datasheets give it: init 0xFFFF, reflected poly 0xA001, bit by bit."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def datasheet_frame(command_id: int, payload: bytes) -> bytes:
    """AA 55 | length (bytes after it, before the CRC) | command id | payload | CRC16 low first."""
    body = bytes([0xAA, 0x55, 1 + len(payload), command_id]) + payload
    crc = crc16_modbus_bitwise(body)
    return body + bytes([crc & 0xFF, crc >> 8])


def datasheet_set_all(levels: tuple[int, ...]) -> bytes:
    mask = 0
    for level, motors in zip(levels, MOTORS, strict=True):
        if level > 0:
            for motor in motors:
                mask |= 1 << motor
    return datasheet_frame(0x01, bytes([mask, *levels]))


def generic_codec(profile_name: str) -> Codec:
    """A codec whose binary frames all take the slot-by-slot path (plain off), memo off."""
    codec = Codec(load_profile(profile_name))
    for table in (codec._commands, codec._replies):
        for name, frame in table.items():
            if isinstance(frame, BinaryFrame):
                table[name] = dataclasses.replace(frame, plain=False)
    codec._set_all_plain = None
    return codec


def generic_commands(codec: Codec) -> BinaryEngine[Command]:
    frames = [(k, f) for k, f in codec._commands.items() if isinstance(f, BinaryFrame)]
    return BinaryEngine[Command](frames, codec._make_command)


LEVELS = st.tuples(*[st.integers(0, 255)] * 6)


@settings(max_examples=400, deadline=None)
@given(LEVELS)
def test_set_all_matches_the_datasheet(levels: tuple[int, ...]) -> None:
    want = datasheet_set_all(levels)
    assert Codec(PROFILE).encode(SetAll(levels)) == want
    assert CODEC._encode(SetAll(levels)) == want
    assert generic_codec("vb6-binary")._encode(SetAll(levels)) == want
    assert Codec(PROFILE).command_parser().feed(want) == [SetAll(levels)]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 5), st.integers(0, 255))
def test_set_zone_matches_the_datasheet(zone: int, level: int) -> None:
    want = datasheet_frame(0x02, bytes([zone, level]))
    assert CODEC._encode(SetZone(zone, level)) == want
    assert Codec(PROFILE).command_parser().feed(want) == [SetZone(zone, level)]


@pytest.mark.parametrize("levels", [(256, 0, 0, 0, 0, 0), (0, 0, 0, 0, 0, -1)])
def test_out_of_range_says_what_the_generic_path_says(levels: tuple[int, ...]) -> None:
    with pytest.raises(ProfileError) as fast:
        CODEC._encode(SetAll(levels))
    with pytest.raises(ProfileError) as generic:
        generic_codec("vb6-binary")._encode(SetAll(levels))
    assert str(fast.value) == str(generic.value)
    with pytest.raises(ProfileError) as zone:
        CODEC._encode(SetZone(6, 1))
    with pytest.raises(ProfileError) as generic_zone:
        generic_codec("vb6-binary")._encode(SetZone(6, 1))
    assert str(zone.value) == str(generic_zone.value)


def test_float_levels_convert_as_before() -> None:
    levels = (1.0, 0.0, 255.0, 3.0, 0.0, 7.0)
    assert CODEC._encode(SetAll(levels)) == datasheet_set_all((1, 0, 255, 3, 0, 7))  # type: ignore[arg-type]


def _streams(profile_name: str, seed: int) -> list[bytes]:
    """Chunks of good, corrupted, truncated and garbage bytes, as a bad line delivers them."""
    rng = random.Random(seed)
    codec = Codec(load_profile(profile_name))
    good = list(codec._fixed.values())
    if profile_name == "vb6-binary":
        good += [codec.encode(SetAll(tuple(rng.randrange(256) for _ in range(6))))
                 for _ in range(20)]
        good += [codec.encode(SetZone(rng.randrange(6), rng.randrange(256))) for _ in range(10)]
    stream = bytearray()
    for _ in range(60):
        frame = bytearray(rng.choice(good))
        roll = rng.random()
        if roll < 0.15:
            frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
        elif roll < 0.25:
            frame = frame[: rng.randrange(1, len(frame))]
        elif roll < 0.3:
            frame = bytearray(rng.randbytes(rng.randrange(1, 6)))
        stream += frame
    chunks = []
    pos = 0
    while pos < len(stream):
        step = rng.choice([1, 2, 5, 8, 13, 13, 13, 26, 40])
        chunks.append(bytes(stream[pos : pos + step]))
        pos += step
    return chunks


@pytest.mark.parametrize("profile_name", ["vb6-binary", "remote-stepper"])
@pytest.mark.parametrize("seed", range(40))
def test_streams_parse_as_the_generic_path_does(profile_name: str, seed: int) -> None:
    chunks = _streams(profile_name, seed)
    codec = Codec(load_profile(profile_name))
    fast = codec.command_parser()
    generic = generic_commands(generic_codec(profile_name))
    got: list[Command | BadFrame] = []
    want: list[Command | BadFrame] = []
    for chunk in chunks:
        got += fast.feed(chunk)
        want += generic.feed(chunk)
    assert got == want
    # Whole frames one by one, as a clean link delivers them (the single-frame fast path).
    whole = b"".join(chunks)
    generic = generic_commands(generic_codec(profile_name))
    for frame in codec._fixed.values():
        assert codec.command_parser().feed(frame) == generic.feed(frame)
    assert codec.command_parser().feed(whole) == generic_commands(
        generic_codec(profile_name)).feed(whole)


@pytest.mark.parametrize("name", sorted(CHECKSUMS_FROM))
def test_a_checksum_continues_from_its_prefix(name: str) -> None:
    rng = random.Random(name)
    whole, cont = CHECKSUMS[name], CHECKSUMS_FROM[name]
    for _ in range(200):
        a, b = rng.randbytes(rng.randrange(12)), rng.randbytes(rng.randrange(12))
        assert cont(whole(a), b) == whole(a + b)


@settings(max_examples=300, deadline=None)
@given(LEVELS, st.integers(0, 12), st.integers(0, 7))
def test_a_lone_corrupted_frame_reads_as_the_generic_path_reads_it(
    levels: tuple[int, ...], at: int, bit: int
) -> None:
    frame = bytearray(datasheet_set_all(levels))
    frame[at] ^= 1 << bit
    generic = generic_commands(generic_codec("vb6-binary"))
    assert Codec(PROFILE).command_parser().feed(bytes(frame)) == generic.feed(bytes(frame))


@pytest.mark.parametrize("seed", range(20))
def test_replies_parse_as_the_generic_path_does(seed: int) -> None:
    rng = random.Random(seed)
    codec = Codec(PROFILE)
    replies = [Reply("ack"), Reply("nak", {"code": rng.randrange(256)}),
               Reply("status", {**{f"level{z}": rng.randrange(256) for z in range(6)},
                                "frequency": rng.randrange(601)})]
    stream = bytearray()
    for _ in range(40):
        frame = bytearray(codec.encode_reply(rng.choice(replies)))
        if rng.random() < 0.2:
            frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
        stream += frame
    plain = codec.reply_parser()
    slow = generic_codec("vb6-binary")
    frames = [(k, f) for k, f in slow._replies.items() if isinstance(f, BinaryFrame)]
    generic = BinaryEngine(frames, slow._make_reply)
    pos = 0
    while pos < len(stream):
        step = rng.choice([1, 6, 7, 16, 30])
        chunk = bytes(stream[pos : pos + step])
        assert plain.feed(chunk) == generic.feed(chunk)
        pos += step

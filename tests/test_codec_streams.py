"""Every built-in profile: round trips, arbitrary chunking, garbage between frames."""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_profiles import Codec, Profile, builtin_profiles, load_profile
from firmware_profiles.commands import (
    BadFrame,
    Button,
    Command,
    Keepalive,
    Press,
    Query,
    Reply,
    SetAll,
    SetFrequency,
    SetHeat,
    SetMode,
    SetZone,
    Stop,
)

NAMES = sorted(builtin_profiles())
CODECS = {name: Codec(load_profile(name)) for name in NAMES}


def commands_for(codec: Codec) -> st.SearchStrategy[Command]:
    """Every command kind the profile has a frame for, with values it allows."""
    p: Profile = codec.profile
    level = st.integers(p.intensity.min, p.intensity.max)
    # lp4 leases are tenths of a second in two digits: k / 10 survives the round trip exactly.
    lease = st.integers(0, 99).map(lambda k: k / 10)
    kinds: list[st.SearchStrategy[Command]] = []
    if p.supports("set_zone"):
        kinds.append(st.builds(SetZone, st.integers(0, len(p.zones) - 1), level,
                               lease if codec.leased("set_zone") else st.none()))
    if p.supports("set_all"):
        kinds.append(st.builds(SetAll, st.tuples(*[level] * len(p.zones)),
                               lease if codec.leased("set_all") else st.none()))
    if p.supports("set_frequency"):
        assert p.frequency is not None
        raws = p.frequency.raw_values
        value = (st.sampled_from(raws) if p.frequency.table
                 else st.integers(raws[0], raws[-1]))
        kinds.append(st.builds(SetFrequency, value))
    if p.supports("set_heat"):
        assert p.heat is not None
        kinds.append(st.builds(SetHeat, st.integers(0, p.heat.levels)))
    if p.supports("set_mode"):
        kinds.append(st.builds(SetMode, st.sampled_from(sorted(p.modes.values()))))
    buttons = [b for b in get_args(Button) if p.supports(f"press.{b}")]
    if buttons:
        kinds.append(st.builds(Press, st.sampled_from(buttons)))
    fixed: list[Command] = [Stop()]
    fixed += [Keepalive()] if p.supports("keepalive") else []
    fixed += [Query()] if p.supports("query") else []
    kinds.append(st.sampled_from(fixed))
    return st.one_of(kinds)


def replies_for(codec: Codec) -> st.SearchStrategy[Reply]:
    kinds = []
    for kind in ("ack", "nak", "status"):
        if codec.profile.supports(kind):
            keys = codec.reply_fields(kind)
            kinds.append(st.builds(Reply, st.just(kind),
                                   st.fixed_dictionaries({k: st.integers(0, 99) for k in keys})))
    return st.one_of(kinds)


def feed_chunks(feed, data: bytes, cuts: list[int]) -> list[object]:  # type: ignore[no-untyped-def]
    out: list[object] = []
    last = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out += feed(data[last:cut])
        last = cut
    return out


def test_every_builtin_is_exercised() -> None:
    assert NAMES == ["lp4-ascii", "nus-text", "remote-stepper", "vb6-binary"]


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_command_round_trip(name: str, data: st.DataObject) -> None:
    codec = CODECS[name]
    command = data.draw(commands_for(codec))
    assert codec.command_parser().feed(codec.encode(command)) == [command]


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60)
@given(data=st.data())
def test_reply_round_trip_in_chunks(name: str, data: st.DataObject) -> None:
    codec = CODECS[name]
    replies = data.draw(st.lists(replies_for(codec), min_size=1, max_size=5))
    stream = b"".join(codec.encode_reply(r) for r in replies)
    cuts = data.draw(st.lists(st.integers(0, 1000), max_size=8))
    assert feed_chunks(codec.reply_parser().feed, stream, cuts) == replies


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=80)
@given(data=st.data())
def test_stream_of_commands_in_any_chunks(name: str, data: st.DataObject) -> None:
    codec = CODECS[name]
    commands = data.draw(st.lists(commands_for(codec), min_size=1, max_size=8))
    stream = b"".join(codec.encode(c) for c in commands)
    cuts = data.draw(st.lists(st.integers(0, 1000), max_size=12))
    assert feed_chunks(codec.command_parser().feed, stream, cuts) == commands


@pytest.mark.parametrize("name", NAMES)
def test_one_byte_at_a_time(name: str) -> None:
    codec = CODECS[name]
    commands: list[Command] = [Stop(), Stop()]
    if codec.profile.supports("query"):
        commands.append(Query())
    stream = b"".join(codec.encode(c) for c in commands)
    parser = codec.command_parser()
    out: list[object] = []
    for i in range(len(stream)):
        out += parser.feed(stream[i : i + 1])
    assert out == commands


def _garbage(codec: Codec) -> st.SearchStrategy[bytes]:
    """Noise that cannot begin a frame, as the line or header discipline defines it."""
    frames = codec.profile.frames
    if frames.encoding == "ascii":
        assert frames.line_ending is not None
        ending = frames.line_ending.encode()
        text = st.binary(min_size=1, max_size=20).filter(lambda b: not set(b) & set(ending))
        return text.map(lambda b: b + ending)
    starts = {codec.encode(Stop())[0]}
    return st.binary(min_size=1, max_size=20).filter(lambda b: not set(b) & starts)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=80)
@given(data=st.data())
def test_garbage_between_frames_is_reported_and_skipped(name: str, data: st.DataObject) -> None:
    codec = CODECS[name]
    commands = data.draw(st.lists(commands_for(codec), min_size=1, max_size=5))
    noise = data.draw(st.lists(_garbage(codec), min_size=len(commands), max_size=len(commands)))
    stream = b"".join(n + codec.encode(c) for n, c in zip(noise, commands, strict=True))
    cuts = data.draw(st.lists(st.integers(0, 1000), max_size=6))
    out = feed_chunks(codec.command_parser().feed, stream, cuts)
    assert [x for x in out if not isinstance(x, BadFrame)] == commands
    bad = [x for x in out if isinstance(x, BadFrame)]
    assert len(bad) >= len(commands)
    assert b"".join(b.data for b in bad) == b"".join(noise)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=80)
@given(data=st.data())
def test_a_flipped_bit_never_passes_as_a_command(
    name: str, data: st.DataObject
) -> None:
    codec = CODECS[name]
    command = data.draw(commands_for(codec))
    frame = bytearray(codec.encode(command))
    ending = (codec.profile.frames.line_ending or "").encode()
    body = len(frame) - len(ending)
    i = data.draw(st.integers(0, body - 1))
    frame[i] ^= 1 << data.draw(st.integers(0, 6))
    out = codec.command_parser().feed(bytes(frame))
    assert all(isinstance(x, BadFrame) for x in out)


@pytest.mark.parametrize("name", NAMES)
def test_feeding_bytearray_and_memoryview(name: str) -> None:
    codec = CODECS[name]
    frame = codec.encode(Stop())
    parser = codec.command_parser()
    assert parser.feed(bytearray(frame)) == [Stop()]
    assert parser.feed(memoryview(frame)) == [Stop()]  # type: ignore[arg-type]
    noise = parser.feed(bytearray(b"\x01\x02\r\n"))
    assert noise and all(type(x.data) is bytes for x in noise if isinstance(x, BadFrame))

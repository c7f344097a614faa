"""The key decoder (bytes in, keys out), the intensity scale rule, and the scale on the wire."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.device import Device
from controller.events import Event, ScaleChanged
from controller.keys import ACTIONS, KeyDecoder
from controller.limits import DEFAULT_LIMITS
from controller.runner import plan
from controller.session import Session
from controller.transports.base import Endpoint
from controller.transports.sim import SimTransport
from firmware_profiles import load_profile
from hil.cushion import SimulatedCushion
from protocols import load_program
from tests.support import advance, simulate


def _keys(*chunks: bytes, expire: bool = True) -> list[str]:
    decoder = KeyDecoder()
    keys = [k for chunk in chunks for k in decoder.feed(chunk)]
    return keys + (decoder.expire() if expire else [])


@pytest.mark.parametrize(
    ("chunks", "keys"),
    [
        ((b" ",), [" "]),
        ((b"+-=s",), ["+", "-", "=", "s"]),
        ((b"\x1b",), ["esc"]),  # a lone Esc: known only when the timeout expires
        ((b"\x1b[A",), []),  # arrow up
        ((b"\x1b[1;5C",), []),  # Ctrl-arrow right (parameters)
        ((b"\x1bOP",), []),  # F1 (SS3)
        ((b"\x1b[[A",), []),  # F1 on the Linux console
        ((b"\x1b[15~",), []),  # F5
        ((b"\x1b", b"[", b"B"), []),  # a sequence split over three reads is still one key
        ((b"\x1b[A q",), [" ", "q"]),  # keys after a sequence still count
        ((b"\x1bq",), ["esc", "q"]),  # Esc then q typed fast: both are stops, neither lost
        ((b"\x1b\x1b",), ["esc", "esc"]),  # Esc twice
        ((b"\x1b[",), ["esc"]),  # a sequence that never finished: the Esc counts
        ((b"\x1b[1\x03",), ["esc", "\x03"]),  # a control byte inside a sequence ends it
        ((b"\xc3\xa9 ",), [" "]),  # non-ASCII (UTF-8 letters) means nothing
    ],
)
def test_the_decoder_tells_esc_from_sequences(chunks: tuple[bytes, ...], keys: list[str]) -> None:
    assert _keys(*chunks) == keys


def test_a_pending_esc_waits_for_the_timeout() -> None:
    decoder = KeyDecoder()
    assert decoder.feed(b"\x1b") == [] and decoder.pending
    assert decoder.feed(b"[") == [] and decoder.pending
    assert decoder.feed(b"D") == [] and not decoder.pending  # arrow left: no Esc
    assert decoder.expire() == []
    assert decoder.feed(b"\x1b") == [] and decoder.expire() == ["esc"]
    assert ACTIONS["esc"] == ACTIONS["q"] == "emergency"
    assert ACTIONS[" "] == "pause" and ACTIONS["s"] == "stop"
    assert ACTIONS["+"] == ACTIONS["="] == "stronger" and ACTIONS["-"] == "weaker"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([-1, +1, -2, +3]), max_size=40))
def test_the_scale_follows_a_model_in_whole_tenths(steps: list[int]) -> None:
    seen: list[Event] = []
    profile = load_profile("lp4-ascii")
    timeline = plan(load_program("lumbar-short"), profile, DEFAULT_LIMITS)

    async def main() -> None:
        transport = SimTransport(Endpoint("sim", profile.name), profile, SimulatedCushion(profile))
        device = Device(transport, profile, DEFAULT_LIMITS, emit=seen.append)
        session = Session(timeline, device, emit=seen.append)
        tenths = 10  # the model: whole tenths of the plan, from 1 to 10, in integers
        changes = 0
        for step in steps:
            before, tenths = tenths, min(10, max(1, tenths + step))
            assert math.isclose(session.scale_by(step), tenths / 10)
            assert math.isclose(session.scale, tenths / 10)
            if tenths != before:
                changes += 1
                last = seen[-1]
                assert isinstance(last, ScaleChanged) and math.isclose(last.factor, tenths / 10)
        assert sum(isinstance(e, ScaleChanged) for e in seen) == changes
        session.stop()
        assert session.scale_by(+1) == session.scale  # no change once stopping

    asyncio.run(main())


def test_the_scale_lowers_the_wire_at_once_and_never_raises_it_past_the_plan() -> None:
    profile = load_profile("vb6-binary")  # 255 levels: the scale is visible on the wire
    limits = DEFAULT_LIMITS
    timeline = plan(load_program("lumbar-classic"), profile, limits)
    top = profile.intensity.max
    marks: dict[str, float] = {}

    async def during(session: Session, cushion: SimulatedCushion) -> None:
        loop = asyncio.get_running_loop()
        await advance(600)  # well into the main part
        marks["origin"] = session.origin
        marks["down"] = loop.time()
        for _ in range(3):
            session.scale_by(-1)  # 70 % of the plan
        await advance(120)
        marks["up"] = loop.time()
        for _ in range(6):
            session.scale_by(+1)  # back to 100 %, and three presses more that do nothing
        await advance(60)
        marks["stop"] = loop.time()
        session.stop()

    run = simulate("lumbar-classic", profile, limits, during=during)
    assert [round(e.factor, 6) for e in run.of(ScaleChanged)] == [0.9, 0.8, 0.7, 0.8, 0.9, 1.0]
    origin, down, up = marks["origin"], marks["down"], marks["up"]
    frame = 1.0 / profile.limits.max_update_hz + 0.05  # one update interval to reach the wire

    def factor(t: float) -> float:
        return 0.7 if down + frame <= t < up else 1.0

    caps = [
        min(limits.max_intensity, limits.kidney_max_intensity if z.kidney else 1.0)
        for z in profile.zones
    ]
    bitten = 0
    for z in range(len(profile.zones)):
        cap_level = math.floor(caps[z] * top + 1e-9)
        run.cushion.recorder.assert_never_above(cap_level, z)
        for t, level in run.cushion.recorder.levels(z):
            if t >= marks["stop"]:
                break
            planned = timeline.at(t - origin).levels[z]
            # A scaled output may lag its plan by one level between wake points, never more.
            allowed = math.floor(factor(t) * planned * top + 1e-9) + 1
            assert level <= allowed, (z, t - origin, level, allowed, planned)
            if down + frame <= t < up and level and level < 0.75 * planned * top:
                bitten += 1
    assert bitten > 10  # the lowered scale really played, not just was allowed
    # Back at 100 %: the plan's own levels play again (within the one-level lag).
    back = [
        (lv, math.floor(timeline.at(t - origin).levels[z] * top + 1e-9))
        for z in range(len(profile.zones))
        for t, lv in run.cushion.recorder.levels(z)
        if up + 10 < t < marks["stop"]
    ]
    assert sum(1 for lv, planned in back if planned > 20 and lv >= planned - 1) > 10

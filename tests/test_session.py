"""Sessions end to end on the simulated cushion, on the virtual clock."""

from __future__ import annotations

import ast
import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.device import Device
from controller.events import AllOff, Paused, Resumed, SessionEnded, SetpointSent
from controller.limits import DEFAULT_LIMITS
from controller.safety import zone_caps
from controller.session import Session, SessionResult
from controller.timeline import Setpoint, Timeline
from controller.transports.base import Endpoint
from controller.transports.sim import SimTransport
from firmware_profiles import load_profile
from firmware_profiles.commands import Press, SetAll, SetZone, Stop
from hil.cushion import SimulatedCushion
from hil.vtime import run_virtual
from protocols import Program
from tests.invariants import assert_wire_respects_envelope, wire_points
from tests.strategies import programs
from tests.support import advance, simulate


@pytest.mark.parametrize(
    ("program", "profile"),
    [
        ("lumbar-classic", "lp4-ascii"),
        ("lumbar-classic", "vb6-binary"),
        ("lumbar-short", "remote-stepper"),  # a 15-minute auto-off cushion gets the short program
    ],
)
def test_builtin_programs_run_safely_on_every_profile(program: str, profile: str) -> None:
    run = simulate(program, profile)
    assert run.result.outcome == "done" and run.result.exit_code == 0
    assert_wire_respects_envelope(run, DEFAULT_LIMITS)
    rec = run.cushion.recorder
    rec.assert_no("watchdog")  # the keepalive kept a device with a watchdog alive
    rec.assert_no("lease_expired")  # leases were renewed before they ran out
    rec.assert_no("refused")
    rec.assert_no("bad_frame")
    assert isinstance(rec.commands()[-1], Stop)
    end = run.of(SessionEnded)[0]
    assert end.t_s == pytest.approx(run.program.duration_s)
    assert max(rec.max_level(z) for z in range(rec.zone_count)) > 0


@pytest.mark.parametrize(
    "program", ["lumbar-osteochondrosis", "radiculitis-gentle", "lumbar-short"]
)
def test_other_builtin_programs_run_safely(program: str) -> None:
    run = simulate(program, "vb6-binary")
    assert run.result.exit_code == 0
    assert_wire_respects_envelope(run, DEFAULT_LIMITS)


def test_json_events_agree_with_the_wire() -> None:
    run = simulate("lumbar-short", "lp4-ascii")
    sent = run.of(SetpointSent)
    assert sent and len(sent) == len({(e.t_s, e.levels) for e in sent})
    last_levels = run.cushion.recorder.last_levels()
    assert run.of(AllOff)[-1].sent and not any(last_levels)
    # Each reported setpoint is what the device was commanded at that moment.
    for event in sent[:: max(1, len(sent) // 50)]:
        for z, level in enumerate(event.levels):
            assert run.cushion.recorder.level_at(z, event.t_s) == level


def test_pause_turns_off_and_resume_ramps_from_zero() -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(600)
        assert max(cushion.state.commanded) > 2
        session.pause()
        await advance(30)
        assert not any(cushion.state.commanded)
        session.resume()

    run = simulate("lumbar-classic", "vb6-binary", during=during)
    assert run.result.exit_code == 0
    assert run.of(Paused) and run.of(Resumed)
    resumed_at = run.of(Resumed)[0].t_s
    points = [(t, v) for t, v in wire_points(run.cushion.recorder, 255) if t >= resumed_at]
    # Ten seconds after the resume the ceiling is at most 20 % (+1 level), although the
    # program had been at ~50 % before the pause.
    assert max(v for t, v in points if t < resumed_at + 10) <= 0.2 + 1 / 255
    assert_wire_respects_envelope(run, DEFAULT_LIMITS)
    assert run.of(SessionEnded)[0].t_s == pytest.approx(run.program.duration_s + 30, abs=0.2)


def test_stop_ramps_down_then_turns_everything_off() -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(600)
        session.stop()

    run = simulate("lumbar-classic", "vb6-binary", during=during)
    assert run.result.outcome == "stopped" and run.result.exit_code == 0
    rec = run.cushion.recorder
    stop_t = rec.of("command")[-1].t
    assert isinstance(rec.commands()[-1], Stop)
    assert 600 + 2.5 <= stop_t <= 600 + 3.5  # a controlled ramp-down, not a cut
    falling = [(t, v) for t, v in wire_points(rec, 255) if 600 <= t < stop_t]
    assert all(b[1] <= a[1] for a, b in itertools.pairwise(falling))
    rec.assert_all_off_at_end()


def test_emergency_stop_cuts_at_once_and_nothing_follows() -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(600.05)
        await session.emergency_stop("test")
        await asyncio.sleep(0)  # one loop turn: the simulated wire delivers with call_soon
        assert not any(cushion.state.commanded)  # off with no virtual time passing

    run = simulate("lumbar-classic", "lp4-ascii", during=during)
    assert run.result.outcome == "stopped" and run.result.exit_code == 130
    rec = run.cushion.recorder
    stops = [e for e in rec.of("command") if isinstance(e.detail, Stop)]
    first_stop = next(e.t for e in stops if e.t > 1)
    assert first_stop == pytest.approx(600.05, abs=1e-6)
    after = [e.detail for e in rec.of("command") if e.t >= first_stop]
    assert all(not isinstance(c, SetZone) or c.level == 0 for c in after)


@pytest.mark.parametrize("fault", ["silent", "garble_replies"])
def test_a_device_that_stops_answering_sensibly_ends_with_exit_3(fault: str) -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(120)
        setattr(cushion.faults, fault, True)

    run = simulate("lumbar-classic", "lp4-ascii", during=during)
    assert run.result.outcome == "device-error" and run.result.exit_code == 3
    assert run.of(SessionEnded)[0].t_s < 125
    run.cushion.recorder.assert_all_off_at_end()  # the all-off frame still got through


def test_link_loss_ends_the_session_with_exit_3() -> None:
    transport_box: list[SimTransport] = []

    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(300)
        link = session.device.transport._link
        assert link is not None
        transport_box.append(session.device.transport)  # type: ignore[arg-type]
        link.disconnect()

    run = simulate("lumbar-classic", "vb6-binary", during=during)
    assert run.result.exit_code == 3
    assert "dropped" in run.result.message or "closed" in run.result.message


def test_latest_value_wins_and_updates_never_queue() -> None:
    profile = load_profile("vb6-binary")
    cushion = SimulatedCushion(profile)

    async def main() -> None:
        transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
        events: list[object] = []
        async with Device(transport, profile, DEFAULT_LIMITS, emit=events.append) as device:
            serving = asyncio.create_task(device.serve())
            device.resume()
            device.set(Setpoint((0.6,) * 6))
            await advance(100)  # the ceiling has climbed to 0.6
            for k in range(200):  # a burst far faster than the device's 50 updates/s
                device.set(Setpoint((0.59 - 0.001 * k,) * 6))
            await advance(1)
            serving.cancel()

    run_virtual(main())
    frames = [e for e in cushion.recorder.of("command") if e.t >= 100]
    sets = [e.detail for e in frames if type(e.detail).__name__ in ("SetAll", "SetZone")]
    # Coalesced: one frame carrying the newest value, not 200 stale values in a queue.
    newest = 0.59 - 0.001 * 199
    caps = [min(c for c, _ in rules) for rules in zone_caps(profile, DEFAULT_LIMITS, sparing=False)]
    assert sets == [SetAll(tuple(profile.intensity.to_device(min(newest, c)) for c in caps))]


def test_stepping_cushion_confirms_every_press() -> None:
    run = simulate("lumbar-short", "remote-stepper")
    assert run.result.exit_code == 0
    rec = run.cushion.recorder
    presses = [e for e in rec.of("command") if isinstance(e.detail, Press)]
    changes = rec.of("level") + rec.of("mode")
    assert presses and len(presses) == len(changes)  # every press took; none was repeated blindly
    assert_wire_respects_envelope(run, DEFAULT_LIMITS)


def test_only_the_link_writes_to_a_transport() -> None:
    # By construction: transports have no public write (python-can's recv/_recv_internal);
    # the private one is reached from the device's link alone, and the link from _send.
    from controller.transports.base import Transport

    assert not hasattr(Transport, "write") and hasattr(Transport, "_write")
    root = Path(__file__).parent.parent / "controller"
    writers, link_writes = [], []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = ast.unparse(node.func.value)
                if node.func.attr == "_write" and "transport" in target:
                    writers.append(f"{path.name}:{target}")
                if node.func.attr == "write" and target == "self.link":
                    link_writes.append(path.name)
    assert writers == ["link.py:self.transport"], writers
    assert link_writes == ["device.py"], link_writes


@settings(max_examples=25, deadline=None)
@given(program=programs(), profile=st.sampled_from(["lp4-ascii", "vb6-binary", "remote-stepper"]))
def test_bytes_the_simulator_receives_never_break_the_envelope(
    program: Program, profile: str
) -> None:
    run = simulate(program, profile)
    assert run.result.exit_code == 0, run.result
    assert_wire_respects_envelope(run, DEFAULT_LIMITS)
    run.cushion.recorder.assert_no("refused")
    run.cushion.recorder.assert_no("watchdog")


def _steady(level: float, seconds: float, zones: int) -> Timeline:
    """A timeline that holds one output from the start to the end (no changes to wake for)."""
    return Timeline(
        tuple(f"z{k}" for k in range(zones)),
        [0.0],
        [Setpoint((level,) * zones)],
        seconds,
        phase_of=["main"],
    )


def _run_steady(
    during: Callable[[Session, SimulatedCushion], Awaitable[None]],
) -> tuple[SessionResult, SimulatedCushion, float]:
    profile = load_profile("vb6-binary")
    cushion = SimulatedCushion(profile)

    async def main() -> tuple[SessionResult, float]:
        transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
        async with Device(transport, profile, DEFAULT_LIMITS, emit=lambda e: None) as device:
            session = Session(_steady(0.4, 600, 6), device, emit=lambda e: None)
            task = asyncio.create_task(session.run())
            await during(session, cushion)
            result = await task
            return result, asyncio.get_running_loop().time()

    result, ended = run_virtual(main())
    return result, cushion, ended


def test_a_stop_in_the_last_steady_stretch_ends_the_session_at_once() -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(100)
        session.stop()

    result, cushion, ended = _run_steady(during)
    assert result.outcome == "stopped" and ended < 110  # not the program's 600 s
    cushion.recorder.assert_all_off_at_end()


def test_resume_in_a_steady_stretch_brings_the_output_back() -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(100)
        session.pause()
        await advance(10)
        assert not any(cushion.state.commanded)
        session.resume()
        await advance(60)
        assert min(cushion.state.commanded) > 0  # back, without waiting for a program change
        session.stop()

    result, _, _ = _run_steady(during)
    assert result.outcome == "stopped"

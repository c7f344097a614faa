"""The real controller against the independent oracle (tests/oracle.py), on the virtual clock.

The controller is driven only through public APIs: `run_program`, `Session` and the `Device`
methods ``set``, ``offer``, ``halt``, ``resume`` and its async context manager, over the
in-process simulated transport. What the simulated cushion received is checked by the oracle,
which takes nothing from the code under test.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st

from controller.device import Device
from controller.events import Event
from controller.limits import DEFAULT_LIMITS, SafetyLimits
from controller.runner import RunOptions, plan, run_program
from controller.safety import zone_caps
from controller.session import Session
from controller.timeline import Setpoint
from controller.transports.base import Endpoint
from controller.transports.sim import SimTransport
from firmware_profiles import load_profile
from firmware_profiles.commands import SetAll, SetZone, Stop
from hil.cushion import SimulatedCushion
from hil.faults import FAULT_KINDS, FaultSchedule, apply_schedule
from hil.recorder import Recorder
from hil.vtime import run_virtual
from protocols import Program, load_program
from tests.oracle import BUILTIN, Check, Demand, Rules, assert_safe, violations
from tests.strategies import programs
from tests.support import advance, play_under_faults

PROFILES = ("lp4-ascii", "nus-text", "vb6-binary", "remote-stepper")
# Bounded and derandomized for CI (the same examples every run, no flaky red); set
# ORACLE_EXAMPLES=1000 to hunt with fresh random examples.
_HUNT = os.environ.get("ORACLE_EXAMPLES")
BOUNDED = settings(
    max_examples=int(_HUNT or "60"),
    derandomize=_HUNT is None,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the oracle by hand, and that it can fail -------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "sparing", "caps", "intro"),
    [
        ("lp4-ascii", False, (3, 3, 8, 8), (3, 3, 4, 4)),
        ("nus-text", True, (3, 3, 5, 5), (3, 3, 4, 4)),
        ("vb6-binary", False, (76, 76, 204, 204, 204, 204), (76, 76, 102, 102, 102, 102)),
        ("vb6-binary", True, (76, 76, 127, 127, 127, 127), (76, 76, 102, 102, 102, 102)),
        ("remote-stepper", False, (1,), (1,)),
    ],
)
def test_oracle_caps_by_hand(
    profile: str, sparing: bool, caps: tuple[int, ...], intro: tuple[int, ...]
) -> None:
    rules = Rules.of(profile, DEFAULT_LIMITS, sparing=sparing)
    assert tuple(rules.cap_level(z) for z in range(rules.zones)) == caps
    assert tuple(rules.cap_level(z, intro=True) for z in range(rules.zones)) == intro


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("sparing", [False, True])
def test_oracle_and_controller_agree_on_the_static_caps(profile: str, sparing: bool) -> None:
    # Two independent derivations of one rule: a disagreement is a bug in one of them.
    rules = Rules.of(profile, DEFAULT_LIMITS, sparing=sparing)
    theirs = zone_caps(load_profile(profile), DEFAULT_LIMITS, sparing=sparing)
    assert [rules.cap(z) for z in range(rules.zones)] == [min(c for c, _ in r) for r in theirs]


def _trace(
    zones: int, changes: list[tuple[float, int, int]], stops: tuple[float, ...] = ()
) -> Recorder:
    rec = Recorder(zones)
    rec.add(0.0, "link", "connected")
    items: list[tuple[float, int, object]] = [(t, 1, (z, lv)) for t, z, lv in changes]
    items += [(t, 0, None) for t in stops]
    for t, kind, detail in sorted(items, key=lambda i: (i[0], i[1])):
        if kind == 0:
            rec.add_command(t, Stop())
            for z in range(zones):
                if rec.last_levels()[z]:
                    rec.add_level(t, z, 0)
        else:
            assert isinstance(detail, tuple)
            rec.add_level(t, *detail)
    return rec


def test_the_oracle_fails_what_it_should() -> None:
    rules = Rules.of("vb6-binary", DEFAULT_LIMITS)  # 0..255, ramp 0.02/s: 5.1 levels per s
    ramp = [(float(t), 2, 5 * t) for t in range(1, 30)]
    assert violations(rules, _trace(6, [*ramp, (30.0, 2, 0)])) == []
    above = violations(rules, _trace(6, [(100.0, 0, 77), (101.0, 0, 0)]))
    assert any("level 77 > cap 76" in v for v in above), above
    fast = violations(rules, _trace(6, [*ramp, (29.5, 3, 170), (31, 2, 0), (31, 3, 0)]))
    assert any("ceiling 0.667" in v for v in fast), fast
    # After a stop frame the next output must start from zero again, not at the old level.
    stale = violations(rules, _trace(6, [*ramp, (40.0, 2, 145), (41, 2, 0)], stops=(39.0,)))
    assert any("first output 0.569" in v and "stop frame" in v for v in stale), stale
    assert violations(rules, _trace(6, [(1.0, 2, 5)])) == [
        "outputs still on at the end: levels (0, 0, 5, 0, 0, 0)"
    ]
    # One level of quantisation is tolerated: 0.02/s allows 0.2 after 10 s, level 51 + 1.
    assert violations(rules, _trace(6, [(10.0, 2, 52), (11.0, 2, 0)])) == []
    assert violations(rules, _trace(6, [(10.0, 2, 53), (11.0, 2, 0)]))
    demand = Demand()
    demand.add(0.0, (math.nan,) * 6)
    asked = violations(rules, _trace(6, [(1.0, 2, 2), (2.0, 2, 0)]), Check(demand=demand))
    assert any("asked for" in v for v in asked), asked
    intro = violations(rules, _trace(6, [*ramp, (31, 2, 0)]), Check(intro_until_s=100))
    assert any("introductory cap 102" in v for v in intro), intro
    final = violations(rules, _trace(6, [*ramp, (31, 2, 0)]), Check(session_end_s=40))
    assert any("final ramp-down" in v for v in final), final


# -- driving the real controller ------------------------------------------------------------------

special = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-9, 1e300, 2.0, 1.0, 0.0])
value = st.one_of(st.floats(0.0, 1.0), special, st.floats(-10, 10, allow_nan=False))


@dataclass
class Run:
    """What one drive of the controller produced."""

    cushion: SimulatedCushion
    demand: Demand
    events: list[Event] = field(default_factory=list)
    fault: BaseException | None = None


Action = tuple[Any, ...]


@st.composite
def actions(draw: st.DrawFn, zones: int) -> list[Action]:
    """A stream of setpoints, waits, pauses, resumes and link drops."""
    out: list[Action] = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(
            st.sampled_from(
                ["set", "set", "set", "offer", "wait", "wait", "pause", "resume", "drop"]
            )
        )
        if kind in ("set", "offer"):
            if draw(st.booleans()):
                levels = (draw(value),) * zones
            else:
                levels = tuple(draw(st.lists(value, min_size=zones, max_size=zones)))
            out.append((kind, levels))
        elif kind == "wait":
            out.append(("wait", draw(st.sampled_from([0.0, 0.01, 0.3, 1.0, 4.0, 7.5, 30.0]))))
        else:
            out.append((kind,))
        if draw(st.booleans()):
            out.append(("wait", draw(st.floats(0.0, 20.0))))
    return out


async def _drive(
    profile_name: str, limits: SafetyLimits, sparing: bool, steps: list[Action]
) -> Run:
    return await _drive_cushion(
        SimulatedCushion(load_profile(profile_name)), limits, sparing, steps
    )


async def _drive_cushion(
    cushion: SimulatedCushion, limits: SafetyLimits, sparing: bool, steps: list[Action]
) -> Run:
    profile = cushion.profile
    transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
    demand = Demand()
    run = Run(cushion, demand)
    loop = asyncio.get_running_loop()
    n = len(profile.zones)
    async with Device(
        transport, profile, limits, emit=run.events.append, sparing=sparing, reconnect=True
    ) as device:
        serving = asyncio.create_task(device.serve())  # raises when the device fails
        device.resume()
        for step in steps:
            if serving.done():
                break
            kind = step[0]
            if kind in ("set", "offer"):
                demand.add(loop.time(), step[1])
                if kind == "set":
                    device.set(Setpoint(step[1]))
                else:
                    await device.offer(Setpoint(step[1]))
            elif kind == "wait":
                await advance(step[1])
            elif kind == "pause":
                demand.add(loop.time(), (0.0,) * n)
                await device.halt("paused", final=False)
            elif kind == "resume":
                device.resume()
            elif kind == "drop" and transport.link is not None:
                transport.link.disconnect()
        await advance(5.0)  # let the last request play out
        if serving.done():
            run.fault = serving.exception()
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    return run


def drive(profile: str, limits: SafetyLimits, sparing: bool, steps: list[Action]) -> Run:
    return run_virtual(_drive(profile, limits, sparing, steps))


limits_strategy = st.builds(
    SafetyLimits,
    max_intensity=st.floats(0.05, 1.0),
    kidney_max_intensity=st.floats(0.0, 0.5),
    sparing_max_intensity=st.floats(0.05, 0.7),
    ramp_per_s=st.floats(0.002, 0.04),
) | st.just(DEFAULT_LIMITS)


@BOUNDED
@given(data=st.data())
def test_arbitrary_setpoint_streams_respect_the_oracle(data: st.DataObject) -> None:
    profile = data.draw(st.sampled_from(PROFILES), label="profile")
    limits = data.draw(limits_strategy, label="limits")
    sparing = data.draw(st.booleans(), label="sparing")
    rules = Rules.of(profile, limits, sparing=sparing)
    steps = data.draw(actions(rules.zones), label="steps")
    run = drive(profile, limits, sparing, steps)
    rec = run.cushion.recorder
    peak = max(rules.fraction(rec.max_level(z)) for z in range(rules.zones))
    target(peak, label="peak output")  # steer towards streams that reach their caps
    event("outputs reached 10 %" if peak >= 0.1 else "outputs stayed low")
    event("reconnected" if rec.count("link") > 1 else "one link")
    assert_safe(rules, rec, Check(demand=run.demand))


@pytest.mark.parametrize("profile", PROFILES)
def test_a_nan_setpoint_means_off(profile: str) -> None:
    rules = Rules.of(profile, DEFAULT_LIMITS)
    n = rules.zones
    steps: list[Action] = [("set", (0.25,) * n), ("wait", 30.0), ("offer", (math.nan,) * n)]
    steps += [("wait", 10.0), ("set", (0.25,) * (n - 1) + (math.nan,)), ("wait", 10.0)]
    run = drive(profile, DEFAULT_LIMITS, False, steps)
    rec = run.cushion.recorder
    assert rec.max_level() > 0, "the setpoint before the NaN played"
    assert_safe(rules, rec, Check(demand=run.demand))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("bad", [math.inf, -math.inf, -5.0, 1e300])
def test_non_finite_negative_and_huge_setpoints_stay_safe(profile: str, bad: float) -> None:
    rules = Rules.of(profile, DEFAULT_LIMITS)
    n = rules.zones
    steps: list[Action] = [
        ("set", (bad,) * n),
        ("wait", 60.0),
        ("offer", (0.2,) + (bad,) * (n - 1)),
    ]
    steps += [("wait", 10.0), ("pause",), ("wait", 1.0), ("resume",), ("wait", 10.0)]
    run = drive(profile, DEFAULT_LIMITS, False, steps)
    assert_safe(rules, run.cushion.recorder, Check(demand=run.demand))


def test_a_device_reset_mid_run_ramps_from_zero_again() -> None:
    """The cushion reboots while playing 60 %: its next outputs must climb from zero."""

    async def main() -> Run:
        profile = load_profile("vb6-binary")
        cushion = SimulatedCushion(profile)
        transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
        demand = Demand()
        run = Run(cushion, demand)
        async with Device(transport, profile, DEFAULT_LIMITS, emit=run.events.append) as device:
            serving = asyncio.create_task(device.serve())
            device.resume()
            demand.add(0.0, (0.6,) * 6)
            device.set(Setpoint((0.6,) * 6))
            await advance(60)
            cushion.reboot()
            await advance(20)
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
        return run

    run = run_virtual(main())
    rules = Rules.of("vb6-binary", DEFAULT_LIMITS)
    assert_safe(rules, run.cushion.recorder, Check(demand=run.demand))


# -- whole programs ------------------------------------------------------------------------------


def _intro_end(program: Program, limits: SafetyLimits) -> float:
    lead = 0.0
    for phase in program.phases:
        if phase.kind != "introductory":
            break
        lead += phase.duration_s
    return max(lead, float(getattr(limits, "intro_min_s", 0.0)))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("program", ["lumbar-classic", "lumbar-short", "radiculitis-gentle"])
def test_builtin_programs_respect_the_oracle(profile: str, program: str) -> None:
    prof, prog = load_profile(profile), load_program(program)
    if prof.limits.auto_off_s and prog.duration_s > prof.limits.auto_off_s:
        pytest.skip("longer than the cushion's auto-off (refused at plan time, tested elsewhere)")
    cushion = SimulatedCushion(prof)

    async def main() -> None:
        transport = SimTransport(Endpoint("sim", prof.name), prof, cushion)
        await run_program(
            prog,
            prof,
            DEFAULT_LIMITS,
            RunOptions(Endpoint("sim", prof.name), handle_signals=False),
            emit=lambda e: None,
            transport=transport,
        )

    run_virtual(main())
    rules = Rules.of(profile, DEFAULT_LIMITS, sparing=prog.sparing)
    start = cushion.recorder.events[0].t
    assert_safe(
        rules,
        cushion.recorder,
        Check(
            intro_until_s=start + _intro_end(prog, DEFAULT_LIMITS),
            session_end_s=start + prog.duration_s,
        ),
    )
    assert cushion.recorder.max_level() > 0


_RESET_MISSED = pytest.mark.xfail(
    strict=False,
    reason="known limitation (docs/safety.md, 'A cushion that restarts by itself'): without a "
    "boot frame a reset is noticed only by a status poll while the levels are steady; while a "
    "ramp or pattern plays the next update re-sends the old levels to the rebooted cushion "
    "(vb6-binary without one, at 30 s: 0 -> 6.7 % at once; lp4-ascii at 600 s: 0 -> 20 %) and "
    "its status then matches what was sent (found by the oracle)",
)


def _without_boot_frame(name: str, tmp: Path) -> Path:
    """Write the built-in profile `name` without its `[replies.boot]` table; return the file."""
    text = (BUILTIN / f"{name}.toml").read_text(encoding="utf-8")
    cut = re.sub(r"\n\[replies\.boot\].*?(?=\n\[|\Z)", "", text, flags=re.S)
    assert cut != text, f"{name} has no boot frame to take out"
    path = tmp / f"{name}-no-boot.toml"
    path.write_text(cut, encoding="utf-8")
    return path


def _reset_during_a_program(profile: str | Path, at_s: float) -> None:
    prof = load_profile(str(profile))
    prog = load_program("lumbar-short" if prof.limits.auto_off_s == 900 else "lumbar-classic")
    cushion = SimulatedCushion(prof)

    async def main() -> None:
        apply_schedule(cushion, FaultSchedule.of({"kind": "reset", "at_s": at_s}))
        await run_program(
            prog,
            prof,
            DEFAULT_LIMITS,
            RunOptions(Endpoint("sim", prof.name), handle_signals=False),
            emit=lambda e: None,
            transport=SimTransport(Endpoint("sim", prof.name), prof, cushion),
        )

    run_virtual(main())
    assert cushion.recorder.count("reboot") == 1
    assert_safe(Rules.of(profile, DEFAULT_LIMITS, sparing=prog.sparing), cushion.recorder)


@pytest.mark.parametrize("at_s", [30, 600])
@pytest.mark.parametrize("profile", PROFILES)
def test_a_device_reset_during_a_program_ramps_from_zero(profile: str, at_s: float) -> None:
    """The absolute built-ins send a boot frame; the stepping one is looked at before presses."""
    _reset_during_a_program(profile, at_s)


@pytest.mark.parametrize(
    ("profile", "at_s"),
    [
        pytest.param(name, at, marks=_RESET_MISSED)
        if (name, at) in (("vb6-binary", 30), ("lp4-ascii", 600), ("nus-text", 600))
        else (name, at)
        for name in ("lp4-ascii", "nus-text", "vb6-binary")
        for at in (30, 600)
    ],
)
def test_a_reset_without_a_boot_frame(profile: str, at_s: float, tmp_path: Path) -> None:
    """The same cushions, had they no boot frame: what the status polls alone catch."""
    _reset_during_a_program(_without_boot_frame(profile, tmp_path), at_s)


@st.composite
def interruptions(draw: st.DrawFn, duration_s: float) -> list[tuple[float, str]]:
    """Pauses (with their resumes) and link drops at random program moments."""
    out: list[tuple[float, str]] = []
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.floats(0.0, duration_s))
        kind = draw(st.sampled_from(["pause", "drop"]))
        out.append((at, kind))
    return sorted(out)


@BOUNDED
@given(data=st.data())
def test_arbitrary_programs_with_pauses_and_drops_respect_the_oracle(data: st.DataObject) -> None:
    profile_name = data.draw(st.sampled_from(PROFILES), label="profile")
    program = data.draw(programs(), label="program")
    limits = data.draw(limits_strategy, label="limits")
    profile = load_profile(profile_name)
    timeline = plan(program, profile, limits)
    cuts = data.draw(interruptions(timeline.duration_s), label="interruptions")
    pause_s = data.draw(st.floats(0.1, 30.0), label="pause_s")
    cushion = SimulatedCushion(profile)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
        async with Device(
            transport,
            profile,
            limits,
            emit=lambda e: None,
            sparing=program.sparing,
            reconnect=True,
        ) as device:
            session = Session(timeline, device, emit=lambda e: None, auto_resume=True)
            runner = asyncio.create_task(session.run())
            start = loop.time()
            for at, kind in cuts:
                await advance(max(0.0, start + at - loop.time()))
                if runner.done():
                    break
                if kind == "pause":
                    session.pause()
                    await advance(pause_s)
                    session.resume()
                elif transport.link is not None:
                    transport.link.disconnect()
            await runner

    run_virtual(main())
    rules = Rules.of(profile_name, limits, sparing=program.sparing)
    start = cushion.recorder.events[0].t
    check = Check(intro_until_s=start + _intro_end(program, limits))
    if not cuts:
        check.session_end_s = start + timeline.duration_s
    assert_safe(rules, cushion.recorder, check)


def test_the_run_time_ceiling_never_outpaces_the_ramp_rule() -> None:
    """Regression (found by the oracle, fixed in 3d26e78): the run-time ceiling gained its 1e-6
    comparison tolerance on every update (~45/s on vb6-binary) and outpaced ramp_per_s."""
    limits = SafetyLimits(max_intensity=1.0, kidney_max_intensity=0.0, ramp_per_s=0.03125)
    run = drive("vb6-binary", limits, False, [("wait", 1.0), ("set", (1.0,) * 6), ("wait", 40)])
    assert_safe(Rules.of("vb6-binary", limits), run.cushion.recorder, Check(demand=run.demand))


def test_what_the_oracle_reads_is_what_the_wire_carries() -> None:
    """Sanity: the simulator decodes the controller's frames into the levels the oracle checks."""
    run = drive("lp4-ascii", DEFAULT_LIMITS, False, [("set", (0.5, 0.5, 0.5, 0.5)), ("wait", 60.0)])
    rec = run.cushion.recorder
    sent = [c for c in rec.commands() if isinstance(c, SetZone | SetAll)]
    assert sent and rec.max_level(0) == 3 and rec.max_level(2) == 5


# -- fault schedules -----------------------------------------------------------------------------

# Faults that last a while; hang-ups and resets are drawn apart (their weight differs).
WINDOW_KINDS = tuple(k for k in FAULT_KINDS if k not in ("hang_up", "reset"))


@st.composite
def fault_schedules(draw: st.DrawFn, *, resets: bool = True) -> FaultSchedule:
    """A few faults at random moments: windows, device resets and hang-ups."""
    entries: list[dict[str, Any]] = []
    kinds = [*WINDOW_KINDS, "reset", "reset", "hang_up"] if resets else [*WINDOW_KINDS, "hang_up"]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(kinds))
        entry: dict[str, Any] = {"kind": kind, "at_s": draw(st.floats(0.0, 60.0))}
        if kind == "hang_up":
            entry["duration_s"] = draw(st.sampled_from([0.0, 0.5]))
        elif kind == "reset":
            entry["duration_s"] = draw(st.sampled_from([0.0, 0.2]))
        else:
            entry["duration_s"] = draw(st.floats(0.05, 20.0))
        if kind == "late_replies":
            entry["params"] = {"delay_s": draw(st.floats(0.01, 1.0))}
        entries.append(entry)
    return FaultSchedule.of(*entries)


async def _drive_with_faults(
    profile_name: str, limits: SafetyLimits, steps: list[Action], schedule: FaultSchedule
) -> Run:
    profile = load_profile(profile_name)
    cushion = SimulatedCushion(profile)
    apply_schedule(cushion, schedule)
    run = await _drive_cushion(cushion, limits, False, steps)
    # The cushion's own time-outs end whatever a fault left on (a stepper has none).
    lim = profile.limits
    await advance(max(lim.watchdog_s or 0.0, lim.lease_s or 0.0) + 1.0)
    return run


@BOUNDED
@given(data=st.data())
def test_setpoint_streams_under_fault_schedules_respect_the_oracle(data: st.DataObject) -> None:
    profile = data.draw(st.sampled_from(PROFILES), label="profile")
    rules = Rules.of(profile, DEFAULT_LIMITS)
    steps = data.draw(actions(rules.zones), label="steps")
    # Resets while outputs climb trip the known missed-reset bug (xfail above): hunt only.
    schedule = data.draw(fault_schedules(resets=bool(_HUNT)), label="faults")
    run = run_virtual(_drive_with_faults(profile, DEFAULT_LIMITS, steps, schedule))
    rec = run.cushion.recorder
    for entry in schedule.entries:
        event(f"fault {entry.kind}")
    event("the device failed" if run.fault is not None else "no device error")
    # Without a watchdog or lease (remote-stepper) nothing stops a cushion that swallowed the
    # final all-off (docs/safety.md: the device's own protections); the rest still holds.
    dead_man = rules.control != "stepping"
    assert_safe(rules, rec, Check(demand=run.demand, off_at_end=dead_man))


@BOUNDED
@given(data=st.data())
def test_arbitrary_programs_under_fault_schedules_respect_the_oracle(data: st.DataObject) -> None:
    profile_name = data.draw(st.sampled_from(PROFILES), label="profile")
    program = data.draw(programs(), label="program")
    # Resets during a program trip the known missed-reset bug (see the xfail above); the CI
    # examples leave them out until it is fixed, a hunt (ORACLE_EXAMPLES) keeps them.
    schedule = data.draw(fault_schedules(resets=bool(_HUNT)), label="faults")
    auto_resume = data.draw(st.booleans(), label="auto_resume")
    profile = load_profile(profile_name)
    limits = DEFAULT_LIMITS
    cushion = SimulatedCushion(profile)

    async def main() -> None:
        await play_under_faults(
            profile, program, limits, cushion, schedule, auto_resume=auto_resume
        )
        lim = profile.limits
        await advance(max(lim.watchdog_s or 0.0, lim.lease_s or 0.0) + 1.0)

    run_virtual(main())
    for entry in schedule.entries:
        event(f"fault {entry.kind}")
    rules = Rules.of(profile_name, limits, sparing=program.sparing)
    start = cushion.recorder.events[0].t
    check = Check(
        intro_until_s=start + _intro_end(program, limits),
        off_at_end=rules.control != "stepping",
    )
    assert_safe(rules, cushion.recorder, check)

"""One conformance suite, two links: the same end-to-end checks over a real pty and over BLE.

Both links run the real controller (transport, device facade, session) against the
simulated cushion: over a pseudo-terminal opened with pyserial, and over bleak with the
simulated radio (bumble). The loop's clock runs ten times faster than real time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from controller.clock import ScaledTimeLoop
from controller.device import Device
from controller.events import Event
from controller.limits import DEFAULT_LIMITS, SafetyLimits
from controller.runner import plan, sim_ble_transport
from controller.session import Session
from controller.timeline import Setpoint
from controller.transports.base import Endpoint, Transport
from controller.transports.serial import SerialTransport
from firmware_profiles import load_profile
from firmware_profiles.commands import SetAll, SetZone, Stop
from hil.cushion import SimulatedCushion
from hil.ptylink import PtyLink
from protocols import Phase, Program, Step
from tests.invariants import assert_wire_respects_envelope
from tests.support import Run

pytestmark = pytest.mark.realtime

SPEED = 10.0
# A 40-second program only reaches real levels with a faster ramp and a short ramp-down.
# Built directly: `narrow` (the user's path) never shortens the final ramp-down.
LIMITS = SafetyLimits(**{**DEFAULT_LIMITS.model_dump(), "ramp_per_s": 0.04, "final_ramp_down_s": 4})
PROGRAM = Program(
    name="conformance",
    title="Conformance",
    phases=(
        Phase(
            name="Intro",
            kind="introductory",
            steps=(
                Step(technique="stroking", zones=("back",), duration_s=8, intensity=(0.2, 0.3)),
            ),
        ),
        Phase(
            name="Main",
            kind="main",
            steps=(
                Step(
                    technique="vibration-continuous",
                    zones=("all",),
                    duration_s=14,
                    intensity=(0.5, 0.5),
                ),
                Step(
                    technique="rubbing",
                    zones=("paravertebral",),
                    duration_s=10,
                    intensity=(0.4, 0.4),
                ),
            ),
        ),
        Phase(
            name="Final",
            kind="final",
            steps=(Step(technique="stroking", zones=("all",), duration_s=8, intensity=(0.3, 0.0)),),
        ),
    ),
)

LinkFactory = Callable[[SimulatedCushion], contextlib.AbstractAsyncContextManager[Transport]]


@contextlib.asynccontextmanager
async def pty_link(cushion: SimulatedCushion) -> AsyncIterator[Transport]:
    """The simulated cushion on a pseudo-terminal, reached through pyserial."""
    async with PtyLink(cushion) as link:
        yield SerialTransport(Endpoint("serial", link.port), cushion.profile)


@contextlib.asynccontextmanager
async def ble_link(cushion: SimulatedCushion) -> AsyncIterator[Transport]:
    """The simulated cushion on a virtual BLE radio, reached through bleak."""
    from hil.ble import SimBleWorld

    async with SimBleWorld() as world:
        peripheral = await world.add_cushion(cushion)
        endpoint = Endpoint("ble", peripheral.address, {"sim": "1"})
        yield sim_ble_transport(endpoint, cushion.profile, world)


LINKS = {"pty": pty_link, "ble": ble_link}
CASES = [(link, profile) for link in LINKS for profile in ("nus-text", "vb6-binary")]


async def until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Wait (on the loop's clock) until `condition()` holds; fail after `timeout_s`."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout_s
    while not condition():
        assert loop.time() < give_up, "condition never came true"
        await asyncio.sleep(0.05)


def running(cushion: SimulatedCushion) -> Callable[[], bool]:
    """Return a check: some zone is commanded above half its ramp-limited top this run."""
    return lambda: max(cushion.state.commanded, default=0) >= 2


def run_scaled(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run on a loop whose clock runs SPEED times faster than real time."""
    with asyncio.Runner(loop_factory=lambda: ScaledTimeLoop(SPEED)) as runner:
        return runner.run(coro)


def session_on(
    link: str,
    profile_name: str,
    during: Callable[[Session, SimulatedCushion], Coroutine[Any, Any, None]] | None = None,
) -> Run:
    """Run the conformance program over one link; `during` acts on the session meanwhile."""
    profile = load_profile(profile_name)
    cushion = SimulatedCushion(profile)
    events: list[Event] = []

    async def main() -> Any:
        async with LINKS[link](cushion) as transport:
            device = Device(transport, profile, LIMITS, emit=events.append)
            async with device:
                session = Session(plan(PROGRAM, profile, LIMITS), device, emit=events.append)
                task = asyncio.create_task(session.run())
                if during is not None:
                    await during(session, cushion)
                return await task

    return Run(run_scaled(main()), events, cushion, profile, PROGRAM)


@pytest.mark.parametrize(("link", "profile"), CASES)
def test_program_runs_within_the_envelope(link: str, profile: str) -> None:
    run = session_on(link, profile)
    assert run.result.exit_code == 0, run.result
    # Arrival times over a real link jitter by milliseconds of real time, which the sped-up
    # clock multiplies: allow 30 ms (real) of it in the ramp check.
    assert_wire_respects_envelope(run, LIMITS, link_jitter_s=0.03 * SPEED)
    rec = run.cushion.recorder
    rec.assert_no("watchdog")  # keepalives kept the device alive through steady stretches
    rec.assert_no("lease_expired")
    rec.assert_no("bad_frame")
    assert max(rec.max_level(z) for z in range(rec.zone_count)) > 0


@pytest.mark.parametrize(("link", "profile"), CASES)
def test_emergency_stop_wins(link: str, profile: str) -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await until(running(cushion))
        await session.emergency_stop("test")

    run = session_on(link, profile, during)
    assert run.result.outcome == "stopped"
    rec = run.cushion.recorder
    first_on = min(t for z in range(rec.zone_count) for t, level in rec.levels(z) if level)
    stop_t = next(e.t for e in rec.of("command") if isinstance(e.detail, Stop) and e.t > first_on)
    after = [e.detail for e in rec.of("command") if e.t >= stop_t]
    assert not any(
        isinstance(c, SetZone | SetAll) and any(getattr(c, "levels", (c.level,))) for c in after
    )
    rec.assert_all_off_at_end()


@pytest.mark.parametrize(("link", "profile"), CASES)
def test_cancellation_turns_everything_off(link: str, profile: str) -> None:
    profile_obj = load_profile(profile)
    cushion = SimulatedCushion(profile_obj)

    async def main() -> None:
        async with LINKS[link](cushion) as transport:
            async with Device(transport, profile_obj, LIMITS, emit=lambda e: None) as device:
                session = Session(plan(PROGRAM, profile_obj, LIMITS), device, emit=lambda e: None)
                task = asyncio.create_task(session.run())
                await until(running(cushion))
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await until(lambda: not any(cushion.state.commanded))  # all-off crossed the link

    run_scaled(main())
    cushion.recorder.assert_all_off_at_end()
    cushion.recorder.assert_no("watchdog")  # off because we said so, not by the device's timer


@pytest.mark.parametrize(("link", "profile"), CASES)
def test_a_silent_controller_is_stopped_by_the_device(link: str, profile: str) -> None:
    profile_obj = load_profile(profile)
    cushion = SimulatedCushion(profile_obj)
    watchdog = profile_obj.limits.watchdog_s
    assert watchdog is not None

    async def main() -> None:
        async with LINKS[link](cushion) as transport:
            device = Device(transport, profile_obj, LIMITS, emit=lambda e: None)
            # Opened without its background loops (no `async with`): after one inline
            # update the controller is silent, as a hung one is: no more frames, no goodbye.
            await device.open()
            device.resume()
            while not running(cushion)():  # climbs under the ramp rule, inline writes only
                await device.offer(Setpoint((0.3,) * len(profile_obj.zones)))
                await asyncio.sleep(0.1)
            await until(lambda: not any(cushion.state.commanded), timeout_s=watchdog * 2)
            # The device's own timers turned it off: its watchdog, or its leases running out.
            rec = cushion.recorder
            assert rec.count("watchdog") + rec.count("lease_expired") >= 1
            assert not any(cushion.state.commanded)
            await transport.close()

    run_scaled(main())

"""Helpers for tests: run a program on a simulated cushion on the virtual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from controller.device import Device
from controller.events import Event, SetpointSent
from controller.limits import DEFAULT_LIMITS, SafetyLimits
from controller.runner import RunOptions, plan, run_program
from controller.session import Session, SessionResult
from controller.transports.base import Endpoint
from controller.transports.sim import SimTransport
from firmware_profiles import Profile, load_profile
from hil.cushion import SimulatedCushion
from hil.faults import FaultSchedule, apply_schedule
from hil.vtime import run_virtual
from protocols import Program, load_program


@dataclass
class Run:
    """What a simulated run produced: the result, the events and the simulated cushion."""

    result: SessionResult
    events: list[Event]
    cushion: SimulatedCushion
    profile: Profile
    program: Program

    def of(self, kind: type[Event]) -> list[Any]:
        """Return the events of one type."""
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def sent(self) -> list[SetpointSent]:
        """Return every setpoint the device facade put on the wire."""
        return self.of(SetpointSent)


def simulate(
    program: str | Program = "lumbar-classic",
    profile: str | Profile = "lp4-ascii",
    limits: SafetyLimits = DEFAULT_LIMITS,
    *,
    during: Callable[[Session, SimulatedCushion], Awaitable[None]] | None = None,
    cushion: SimulatedCushion | None = None,
    reconnect: bool = False,
    auto_resume: bool = False,
) -> Run:
    """Run a program on an in-process simulated cushion on the virtual clock."""
    prog = load_program(program) if isinstance(program, str) else program
    prof = load_profile(profile) if isinstance(profile, str) else profile
    sim = cushion or SimulatedCushion(prof)
    events: list[Event] = []

    async def main() -> SessionResult:
        transport = SimTransport(Endpoint("sim", prof.name), prof, sim)
        if during is None:
            return await run_program(
                prog,
                prof,
                limits,
                RunOptions(Endpoint("sim", prof.name), handle_signals=False),
                emit=events.append,
                transport=transport,
            )
        timeline = plan(prog, prof, limits)
        async with Device(
            transport,
            prof,
            limits,
            emit=events.append,
            sparing=prog.sparing,
            reconnect=reconnect,
        ) as device:
            session = Session(timeline, device, emit=events.append, auto_resume=auto_resume)
            runner = asyncio.create_task(session.run())
            await during(session, sim)
            return await runner

    result = run_virtual(main())
    return Run(result, events, sim, prof, prog)


async def advance(seconds: float) -> None:
    """Let `seconds` pass on the running loop's clock (the virtual one here: no real wait)."""
    await asyncio.sleep(seconds)


async def play_under_faults(
    profile: Profile,
    program: Program,
    limits: SafetyLimits,
    cushion: SimulatedCushion,
    schedule: FaultSchedule,
    *,
    auto_resume: bool,
    resume_after_s: float = 30.0,
) -> SessionResult:
    """Play a program on `cushion` (reconnecting) while `schedule` plays its faults.

    A session that a fault paused is resumed after `resume_after_s`, as a user would.
    """
    timeline = plan(program, profile, limits)
    transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
    apply_schedule(cushion, schedule)
    async with Device(
        transport, profile, limits, emit=lambda e: None, sparing=program.sparing, reconnect=True
    ) as device:
        session = Session(timeline, device, emit=lambda e: None, auto_resume=auto_resume)
        runner = asyncio.create_task(session.run())
        while not runner.done():
            await asyncio.wait({runner}, timeout=resume_after_s)
            if session.paused:
                session.resume()
        return runner.result()


"""A simulated cushion on a real pty, driven by a `Device` on a `SerialTransport`, one loop."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import benchlib  # noqa: F401 - puts the project on sys.path

from controller.device import Device
from controller.events import Event
from controller.limits import SafetyLimits
from controller.transports.base import Endpoint
from controller.transports.serial import SerialTransport
from firmware_profiles import Profile
from firmware_profiles.commands import Command, SetAll, SetZone, Stop
from hil.cushion import SimulatedCushion
from hil.ptylink import PtyLink


class StampedSerialTransport(SerialTransport):
    """The real serial transport, noting the loop time each write began (instrumentation)."""

    def __init__(self, endpoint: Endpoint, profile: Profile) -> None:
        super().__init__(endpoint, profile)
        self.write_times: list[float] = []

    async def _write(self, data: bytes) -> None:
        """Note the time, then write and drain as usual."""
        self.write_times.append(asyncio.get_running_loop().time())
        await super()._write(data)

    def written_before(self, t: float) -> float:
        """Return when the last write that began at or before loop time `t` began."""
        i = bisect.bisect_right(self.write_times, t)
        return self.write_times[i - 1] if i else float("nan")


@dataclass
class Rig:
    """The parts of one pty run: the simulated cushion, its link, the device and its events."""

    cushion: SimulatedCushion
    link: PtyLink
    transport: StampedSerialTransport
    device: Device
    events: list[Event] = field(default_factory=list)

    def received(self, since: int = 0) -> list[tuple[float, Command]]:
        """Return `(loop time, command)` the simulator decoded, from event index `since` on."""
        return [
            (e.t, e.detail)  # type: ignore[misc]
            for e in self.cushion.recorder.events[since:]
            if e.kind == "command"
        ]

    def mark(self) -> int:
        """Return the recorder's event count now, to look only at what comes after."""
        return len(self.cushion.recorder.events)


@contextlib.asynccontextmanager
async def pty_rig(profile: Profile, limits: SafetyLimits) -> AsyncIterator[Rig]:
    """Open a pty with a simulated cushion and a device on it; everything ends off and closed."""
    cushion = SimulatedCushion(profile)
    events: list[Event] = []
    async with PtyLink(cushion) as link:
        transport = StampedSerialTransport(Endpoint("serial", link.port, {}), profile)
        async with Device(transport, profile, limits, emit=events.append) as device:
            yield Rig(cushion, link, transport, device, events)


def zone_level(command: Command, zone: int) -> int | None:
    """Return the level `command` sets on `zone`, or None if it does not set that zone."""
    if isinstance(command, SetZone):
        return command.level if command.zone == zone else None
    if isinstance(command, SetAll):
        return command.levels[zone]
    if isinstance(command, Stop):
        return None
    return None

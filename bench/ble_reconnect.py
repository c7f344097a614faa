"""Reconnect after a simulated BLE link drop, with auto-resume, beside a bare bleak reconnect.

Run: .venv/bin/python bench/ble_reconnect.py [--quick] [--drops N]

Real clock (asyncio.run). A `Session` (auto_resume=True) plays a hand-built steady timeline
on a `Device(..., reconnect=True)` over the simulated BLE link (`sim_ble_transport`, profile
`vb6-binary`, default safety limits). Once the cushion is running, the link is dropped from
the device side (`await peripheral.disconnect()`); per drop we stamp, on the loop clock:
  connected  the peripheral sees the central again (its recorder's "link connected");
  LinkUp     the device facade reports the link back (after the all-off went first);
  ramping    the simulator stamps the first nonzero level command.
Target: LinkUp -> ramping < 1 s. Baseline, interleaved in the same run on a second cushion:
a bare `BleakClient.connect()` on a fresh client right after the same kind of drop.
The ramp rule restarts from zero on every reconnect, so the first nonzero level cannot come
sooner than one device step / ramp_per_s (1/255 / 0.02 per s = 196 ms by default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bleak import BleakClient, BleakScanner

from controller.device import Device
from controller.events import Event, Fault, LinkDown, LinkUp
from controller.limits import DEFAULT_LIMITS
from controller.runner import plan, sim_ble_transport, simulated_ble_world
from controller.session import Session
from controller.timeline import Setpoint, Timeline
from controller.transports.base import Endpoint
from firmware_profiles import load_profile
from firmware_profiles.commands import SetAll, SetZone
from hil.ble import SimBleakClient, SimBleakScanner
from hil.cushion import SimulatedCushion
from hil.recorder import Recorder
from protocols import load_program

PROFILE = "vb6-binary"
TARGET_S = 1.0
LEVEL = 0.2  # the steady intensity (under the kidney cap of 0.3)
BASE_ADDRESS = "F0:CA:00:00:00:B0"
WAIT_S = 10.0  # give up on one drop after this long


def percentile(samples: list[float], q: float) -> float:
    """Return the nearest-rank `q` quantile (0..1) of `samples`."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def steady_timeline(zones: tuple[str, ...], duration_s: float) -> Timeline:
    """Return a timeline holding every zone at LEVEL for `duration_s`."""
    return Timeline(zones, [0.0], [Setpoint((LEVEL,) * len(zones))], duration_s)


def first_on_after(rec: Recorder, t0: float) -> float | None:
    """Return the stamp of the first nonzero level command at or after `t0` (s), or None."""
    for t, kind, c in rec.events:
        if t < t0 or kind != "command":
            continue
        if (isinstance(c, SetAll) and any(c.levels)) or (isinstance(c, SetZone) and c.level):
            return t
    return None


def link_connected_after(rec: Recorder, t0: float) -> float | None:
    """Return the stamp of the peripheral's first "link connected" at or after `t0`, or None."""
    return next(
        (t for t, kind, d in rec.events if t >= t0 and kind == "link" and d == "connected"), None
    )


async def _poll(check: Any, what: str) -> Any:
    """Return check()'s first non-None value, looking every 5 ms for up to WAIT_S."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + WAIT_S
    while (value := check()) is None:
        if loop.time() > give_up:
            raise RuntimeError(f"no {what} within {WAIT_S:g} s")
        await asyncio.sleep(0.005)
    return value


class Drops:
    """Per-drop stamps (loop clock, s) of the controller's reconnects."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def column(self, a: str, b: str) -> list[float]:
        """Return b - a for every drop (s)."""
        return [r[b] - r[a] for r in self.rows]


async def bare_reconnect(world: Any, ble_device: Any) -> tuple[float, float]:
    """Connect a fresh bare client, drop from the device side, time a fresh client's connect.

    Returns (connect() duration, drop -> connected) in seconds.
    """
    peripheral = world.peripheral(BASE_ADDRESS)
    loop = asyncio.get_running_loop()
    first = BleakClient(ble_device, backend=SimBleakClient, world=world)
    await first.connect()
    dropped = loop.time()
    await peripheral.disconnect()
    await _poll(lambda: None if first.is_connected else True, "bare disconnect")
    fresh = BleakClient(ble_device, backend=SimBleakClient, world=world)
    t0 = loop.time()
    await fresh.connect()
    t1 = loop.time()
    await fresh.disconnect()
    await _poll(lambda: None if peripheral.connected else True, "bare link down")
    return t1 - t0, t1 - dropped


async def run(
    drops: int, program: str | None = None
) -> tuple[Drops, list[tuple[float, float]], list[Event]]:
    """Run the session (steady, or a built-in `program`), drop its link `drops` times,
    interleave bare reconnects."""
    profile = load_profile(PROFILE)
    zones = tuple(z.id for z in profile.zones)
    events: list[Event] = []
    stamps: list[tuple[float, Event]] = []
    loop = asyncio.get_running_loop()

    def emit(event: Event) -> None:
        events.append(event)
        if isinstance(event, LinkUp | LinkDown):
            stamps.append((loop.time(), event))

    out = Drops()
    bare: list[tuple[float, float]] = []
    async with simulated_ble_world() as world:
        main = next(p for p in world.peripherals if p.cushion.profile.name == PROFILE)
        await world.add_cushion(SimulatedCushion(profile), name="VB6-BASE", address=BASE_ADDRESS)
        base_device = await BleakScanner.find_device_by_address(
            BASE_ADDRESS, timeout=5.0, backend=SimBleakScanner
        )
        assert base_device is not None, "the baseline cushion was not found"
        rec: Recorder = main.cushion.recorder
        transport = sim_ble_transport(Endpoint("ble", main.address, {"sim": "1"}), profile, world)
        device = Device(transport, profile, DEFAULT_LIMITS, emit=emit, reconnect=True)
        # Plan before opening, as the runner does: a loop busy planning for longer than the
        # reply time-out after the opening all-off makes the facade give up on its ack.
        timeline = (
            steady_timeline(zones, 3600.0)
            if program is None
            else plan(load_program(program), profile, DEFAULT_LIMITS)
        )
        async with device:
            session = Session(timeline, device, emit=emit, auto_resume=True)
            task = asyncio.create_task(session.run(), name="bench-session")
            try:

                def running() -> float | None:
                    if task.done():
                        raise RuntimeError(f"the session ended early: {task.result()}")
                    return first_on_after(rec, 0.0)

                await _poll(running, "output before the first drop")
                for _ in range(drops):
                    await asyncio.sleep(0.3)  # running for a while, as a user would be
                    dropped = loop.time()
                    await main.disconnect()
                    up = await _poll(
                        lambda d=dropped: next(
                            (t for t, e in stamps if t >= d and isinstance(e, LinkUp)), None
                        ),
                        "LinkUp",
                    )
                    connected = link_connected_after(rec, dropped)
                    ramping = await _poll(lambda u=up: first_on_after(rec, u), "nonzero level")
                    assert connected is not None
                    out.rows.append(
                        {"drop": dropped, "connected": connected, "up": up, "ramping": ramping}
                    )
                    bare.append(await bare_reconnect(world, base_device))
            finally:
                await session.emergency_stop("bench over")
                # Past its last wake point the session sleeps out the whole duration and does
                # not see a stop (controller/session.py, the final sleep_until): cut it short.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), 1.0)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await asyncio.sleep(0.1)  # let the peripheral hear of the disconnection
    return out, bare, events


def _stats(name: str, samples: list[float], target: float | None = None) -> str:
    p50, p99, mx = percentile(samples, 0.5), percentile(samples, 0.99), max(samples)
    row = f"{name:<34} {len(samples):>3} {p50 * 1e3:>8.1f} {p99 * 1e3:>8.1f} {mx * 1e3:>8.1f}"
    if target is not None:
        row += "  met" if mx < target else "  MISSED"
    return row


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run on the real clock and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="3 drops (a smoke run)")
    parser.add_argument("--drops", type=int, help="link drops (default 12)")
    parser.add_argument("--program", help="play this built-in program instead of a steady level")
    args = parser.parse_args(argv)
    drops = args.drops or (3 if args.quick else 12)
    started = time.perf_counter()
    out, bare, events = asyncio.run(run(drops, args.program))
    print(
        f"BLE reconnect, profile {PROFILE}, {args.program or 'steady level'}, real clock, "
        f"{drops} drops; "
        f"Python {platform.python_version()}, {time.perf_counter() - started:.1f} s in all"
    )
    print(f"{'interval':<34} {'n':>3} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(_stats("bare: fresh BleakClient.connect()", [a for a, _ in bare]))
    print(_stats("bare: drop -> connect() returned", [b for _, b in bare]))
    print(_stats("drop -> peripheral connected", out.column("drop", "connected")))
    print(_stats("drop -> LinkUp", out.column("drop", "up")))
    print(_stats("peripheral connected -> LinkUp", out.column("connected", "up")))
    print(_stats("LinkUp -> first nonzero level", out.column("up", "ramping"), TARGET_S))
    print(_stats("connected -> first nonzero level", out.column("connected", "ramping"), TARGET_S))
    print(_stats("drop -> first nonzero level", out.column("drop", "ramping")))
    floor = 1 / (load_profile(PROFILE).intensity.max) / DEFAULT_LIMITS.ramp_per_s
    print(
        f"target: LinkUp -> first nonzero level < {TARGET_S:g} s (max shown); the ramp rule "
        f"alone takes {floor * 1e3:.0f} ms to reach one device step"
    )
    faults = [e for e in events if isinstance(e, Fault)]
    if faults:
        print(f"note: {len(faults)} fault event(s), first: {faults[0].message}")


if __name__ == "__main__":
    main()

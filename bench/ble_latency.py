"""Setpoint and emergency-stop latency over the simulated BLE link, beside the bare link.

Run: .venv/bin/python bench/ble_latency.py [--quick] [--updates N] [--stops N]

Real clock (asyncio.run). One virtual radio (the runner's `simulated_ble_world`), the
`vb6-binary` cushion on it, and three measurements, each ending at the simulator's recorder
stamp of the decoded command (the recorder stamps `loop.time()` of the same loop):
  set      `Device.set(...)` -> SetAll stamped (writer task, clamp, codec, BleTransport, bleak);
  offer    `await Device.offer(...)` -> SetAll stamped (the session's inline path);
  halt     `await Device.halt("bench", final=False)` -> Stop stamped, with outputs on;
  bare     `BleakClient.write_gatt_char(write_uuid, frame, response=False)` -> stamped, no
           controller: the link's own latency (half before, half after the controller runs).
Updates are spaced 40 ms apart, above the device's rate limit (50 Hz plus the facade's margin).
The target: set/offer and halt p99 within 2 ms of the bare p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import platform
import sys
import time
from bisect import bisect_left
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bleak import BleakClient, BleakScanner

from controller.device import Device
from controller.events import Event, Fault
from controller.limits import DEFAULT_LIMITS, narrow
from controller.runner import sim_ble_transport, simulated_ble_world
from controller.timeline import Setpoint
from controller.transports.base import Endpoint
from firmware_profiles import Codec, load_profile
from firmware_profiles.commands import Command, SetAll, Stop
from hil.ble import SimBleakClient, SimBleakScanner
from hil.cushion import SimulatedCushion
from hil.recorder import Recorder

PROFILE = "vb6-binary"
SLOT_S = 0.030  # between writes; the device gets every other slot, 60 ms apart, above its
# rate interval (1.1 / 50 Hz + 2 ms = 24 ms)
TARGET_MARGIN_S = 0.002
# The stop trials resume from zero each time; the hard-bound ramp gets outputs on sooner.
LIMITS = narrow(DEFAULT_LIMITS, {"ramp_per_s": 0.04}, allow_raise=True)
BASE_ADDRESS = "F0:CA:00:00:00:B0"
PRIME_LEVEL = 0.1  # ceiling the update trials play under (kidney cap is 0.3)


def percentile(samples: list[float], q: float) -> float:
    """Return the nearest-rank `q` quantile (0..1) of `samples`."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def pattern(k: int, zones: int) -> tuple[int, ...]:
    """Return device levels (1..20) for update `k`, every zone different from update k-1."""
    return tuple(1 + (k + 3 * z) % 20 for z in range(zones))


def stamp_after(rec: Recorder, t0: float, match: Callable[[Command], bool]) -> float | None:
    """Return the recorder time of the first command at or after `t0` that `match`es."""
    events = rec.events
    for i in range(bisect_left(events, t0, key=lambda e: e.t), len(events)):
        t, kind, detail = events[i]
        if kind == "command" and match(detail):  # type: ignore[arg-type]
            return t
    return None


class Trials:
    """Latencies of one kind of trial: (call time, stamp time) pairs on the loop clock (s)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.windows: list[tuple[float, float]] = []
        self.lost = 0

    @property
    def samples(self) -> list[float]:
        """Return every latency (s)."""
        return [b - a for a, b in self.windows]

    def add(self, t0: float, stamp: float | None) -> None:
        """Record a trial called at `t0` and stamped at `stamp` (None: never arrived)."""
        if stamp is None:
            self.lost += 1
        else:
            self.windows.append((t0, stamp))

    def row(self, base_p99: float | None) -> str:
        """One table row in ms; with `base_p99`, the p99 excess over it and the verdict."""
        s = self.samples
        p50, p99, mx = (percentile(s, 0.5), percentile(s, 0.99), max(s)) if s else (0, 0, 0)
        cells = f"{self.name:<6} {len(s):>5} {p50 * 1e3:>8.3f} {p99 * 1e3:>8.3f} {mx * 1e3:>8.3f}"
        if base_p99 is not None and s:
            excess = p99 - base_p99
            verdict = "met" if excess <= TARGET_MARGIN_S else "MISSED"
            cells += f" {excess * 1e3:>+9.3f}  {verdict}"
        if self.lost:
            cells += f"  ({self.lost} lost)"
        return cells

    def tail(self, above: float, gcw: GcWindows) -> str:
        """Describe the samples slower than `above` (s): how many overlapped a GC pass."""
        slow = [(a, b) for a, b in self.windows if b - a > above]
        gens = [gcw.overlapping(a, b) for a, b in slow]
        hit = [g for g in gens if g is not None]
        return (
            f"{self.name:<6} {len(slow):>3} above {above * 1e3:.2f} ms; {len(hit)} overlapped a "
            f"GC pass (generation 2: {sum(g == 2 for g in hit)})"
        )


async def _until(t: float) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, t - loop.time()))


def _stamp(rec: Recorder, t0: float, levels: tuple[int, ...]) -> float | None:
    return stamp_after(rec, t0, lambda c: isinstance(c, SetAll) and c.levels == levels)


class GcWindows:
    """Start and end (loop clock, s) of every garbage-collector pass while installed."""

    def __init__(self) -> None:
        self.windows: list[tuple[float, float, int]] = []
        self._start = 0.0

    def __enter__(self) -> GcWindows:
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        # time.monotonic is the default loop's clock, so windows line up with the stamps.
        if phase == "start":
            self._start = time.monotonic()
        else:
            self.windows.append((self._start, time.monotonic(), info["generation"]))

    def overlapping(self, t0: float, t1: float) -> int | None:
        """Return the oldest generation collected within [t0, t1], or None."""
        gens = [g for a, b, g in self.windows if a <= t1 and b >= t0]
        return max(gens) if gens else None


class Bare:
    """A bare bleak client on the baseline cushion: pre-encoded SetAll frames, no controller."""

    def __init__(self, client: BleakClient, rec: Recorder, write_uuid: str, zones: int) -> None:
        self.client = client
        self.rec = rec
        self.write_uuid = write_uuid
        self.codec = Codec(load_profile(PROFILE))
        self.zones = zones
        self.sent: list[tuple[float, tuple[int, ...]]] = []
        self._k = 0

    async def write(self) -> None:
        """Write the next distinct frame, remembering when the write was called."""
        self._k += 1
        levels = pattern(self._k, self.zones)
        frame = self.codec.encode(SetAll(levels))  # encoded before the clock starts
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await self.client.write_gatt_char(self.write_uuid, frame, response=False)
        self.sent.append((t0, levels))


async def trials(
    world: Any, updates: int, stops: int, out: dict[str, Trials], gcw: GcWindows
) -> list[Event]:
    """Interleave bare writes with the real Device (`set`, `offer`, then halts) on one radio."""
    profile = load_profile(PROFILE)
    ble = profile.ble
    assert ble is not None
    zones = len(profile.zones)
    main = next(p for p in world.peripherals if p.cushion.profile.name == PROFILE)
    # The baseline gets its own cushion on the same radio: one central per peripheral.
    # An explicit address: the world's own allocator may hand out one the runner already used.
    other = await world.add_cushion(
        SimulatedCushion(profile), name="VB6-BASE", address=BASE_ADDRESS
    )
    rec: Recorder = main.cushion.recorder
    events: list[Event] = []
    transport = sim_ble_transport(Endpoint("ble", main.address, {"sim": "1"}), profile, world)
    device = Device(transport, profile, LIMITS, emit=events.append, reconnect=False)
    loop = asyncio.get_running_loop()
    span = profile.intensity.max - profile.intensity.min

    def setpoint(levels: tuple[int, ...]) -> Setpoint:
        # Midway between two device steps, so the facade's round-down gives `levels` exactly.
        return Setpoint(tuple((v + 0.5) / span for v in levels))

    found = await BleakScanner.find_device_by_address(
        other.address, timeout=5.0, backend=SimBleakScanner
    )  # the scanner backend finds the enclosing world itself
    assert found is not None, "the baseline cushion was not found"
    async with (
        BleakClient(found, backend=SimBleakClient, world=world) as client,
        device,
    ):
        bare = Bare(client, other.cushion.recorder, ble.write_uuid, zones)
        serving = asyncio.create_task(device.serve(), name="bench-serve")
        try:
            device.resume()
            device.set(Setpoint((PRIME_LEVEL,) * zones))
            # Climb once at the ramp rate; the ceiling never falls while outputs move below it.
            await asyncio.sleep(PRIME_LEVEL / LIMITS.ramp_per_s + 0.2)
            if device.ceiling < PRIME_LEVEL - 1e-9:
                raise RuntimeError(f"the ceiling only reached {device.ceiling:.3f}")
            sent: dict[str, list[tuple[float, tuple[int, ...]]]] = {"set": [], "offer": []}
            slot = loop.time()
            for k in range(updates):
                # One round: set, bare, offer, bare; device updates 2 slots (60 ms) apart.
                for name in ("set", "bare", "offer", "bare"):
                    slot += SLOT_S
                    await _until(slot)
                    if name == "bare":
                        await bare.write()
                        continue
                    levels = pattern(2 * k + (name == "offer"), zones)
                    t0 = loop.time()
                    if name == "set":
                        device.set(setpoint(levels))
                    else:
                        await device.offer(setpoint(levels))
                    sent[name].append((t0, levels))
            await asyncio.sleep(0.05)
            for name, rows in sent.items():
                for t0, levels in rows:
                    out[name].add(t0, _stamp(rec, t0, levels))
            for k in range(stops):
                device.resume()
                begun = loop.time()
                device.set(setpoint((10,) * zones))
                await asyncio.sleep(SLOT_S)
                await bare.write()
                # Wait until outputs are on (ramping from zero), so the stop cuts a live cushion.
                while not any(
                    t >= begun and isinstance(c, SetAll) and any(c.levels)
                    for t, kind, c in rec.events[-8:]
                    if kind == "command"
                ):
                    await asyncio.sleep(0.005)
                    if loop.time() - begun > 2.0:
                        raise RuntimeError("outputs never came on after resume")
                # Land the stop at varied phases of the writer's 24 ms update cadence.
                await asyncio.sleep((k * 7 % 25) / 1000)
                t0 = loop.time()
                await device.halt("bench", final=False)
                await asyncio.sleep(0.02)
                t = stamp_after(rec, t0, lambda c: isinstance(c, Stop))
                out["halt"].add(t0, t)
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
    for t0, levels in bare.sent:
        out["bare"].add(t0, _stamp(bare.rec, t0, levels))
    return events


async def run(updates: int, stops: int) -> tuple[dict[str, Trials], GcWindows]:
    """Run every measurement in one world on the real clock; return the trials by name."""
    out = {name: Trials(name) for name in ("bare", "set", "offer", "halt")}
    with GcWindows() as gcw:
        async with simulated_ble_world() as world:
            events = await trials(world, updates, stops, out, gcw)
            # Let the peripherals hear of the disconnections before the world tears down:
            # closing a peripheral whose central is already off the radio raises in bumble.
            await asyncio.sleep(0.1)
    faults = [e for e in events if isinstance(e, Fault)]
    if faults:
        print(f"note: {len(faults)} fault event(s), first: {faults[0].message}")
    return out, gcw


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run on the real clock and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials (a smoke run)")
    parser.add_argument("--updates", type=int, help="updates per path (default 300)")
    parser.add_argument("--stops", type=int, help="emergency-stop trials (default 200)")
    args = parser.parse_args(argv)
    updates = args.updates or (60 if args.quick else 300)
    stops = args.stops or (40 if args.quick else 200)
    started = time.perf_counter()
    out, gcw = asyncio.run(run(updates, stops))
    base = out["bare"]
    base_p99 = percentile(base.samples, 0.99)
    print(
        f"BLE latency, profile {PROFILE}, real clock; Python {platform.python_version()}, "
        f"{time.perf_counter() - started:.1f} s in all"
    )
    print(f"{'path':<6} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p99-bare':>9}  target")
    print(base.row(None))
    for name in ("set", "offer", "halt"):
        print(out[name].row(base_p99))
    print(f"target: p99 within {TARGET_MARGIN_S * 1e3:g} ms of the bare link's p99")
    print(f"tails ({len(gcw.windows)} GC passes during the run):")
    for name in ("bare", "set", "offer", "halt"):
        print("  " + out[name].tail(base_p99, gcw))


if __name__ == "__main__":
    main()

"""Measure write -> notification round trips through bleak and the virtual radio.

Run ``python -m hil.ble.latency [profile] [count]`` (real clock; prints median and p99 in ms).
A measurement, not a test: timing claims live here, never in timed asserts.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RoundTrips:
    """Round-trip times of ``count`` query -> reply exchanges (s)."""

    samples: tuple[float, ...]

    @property
    def median_s(self) -> float:
        """Median round trip (s)."""
        return statistics.median(self.samples)

    @property
    def p99_s(self) -> float:
        """99th percentile round trip (s)."""
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    def summary(self) -> str:
        """One line: count, median and p99 in ms."""
        return (
            f"{len(self.samples)} round trips: median {self.median_s * 1e3:.3f} ms, "
            f"p99 {self.p99_s * 1e3:.3f} ms"
        )


async def measure(profile_name: str = "vb6-binary", count: int = 500) -> RoundTrips:
    """Scan, connect, then time ``count`` Query writes until each status reply is notified."""
    from bleak import BleakClient, BleakScanner

    from firmware_profiles import Codec, load_profile
    from firmware_profiles.commands import Query
    from hil.ble.backend import SimBleakClient, SimBleakScanner
    from hil.ble.world import SimBleWorld
    from hil.cushion import SimulatedCushion

    profile = load_profile(profile_name)
    ble = profile.ble
    if ble is None:
        raise ValueError(f"profile '{profile_name}' has no [ble] section")
    codec = Codec(profile)
    parser = codec.reply_parser()
    frame = codec.encode(Query())
    clock = asyncio.get_running_loop().time
    async with SimBleWorld() as world:
        peripheral = await world.add_cushion(SimulatedCushion(profile, spin_up_s=0.0))
        device = await BleakScanner.find_device_by_address(
            peripheral.address, timeout=5.0, backend=SimBleakScanner
        )
        if device is None:
            raise RuntimeError("the simulated cushion was not found")
        arrived: asyncio.Queue[object] = asyncio.Queue()
        async with BleakClient(device, backend=SimBleakClient, world=world) as client:

            def on_notify(_char: object, data: bytearray) -> None:
                for reply in parser.feed(bytes(data)):
                    arrived.put_nowait(reply)

            await client.start_notify(ble.notify_uuid or ble.write_uuid, on_notify)
            samples = []
            for _ in range(count):
                start = clock()
                await client.write_gatt_char(
                    ble.write_uuid, frame, response=ble.write_with_response
                )
                await arrived.get()
                samples.append(clock() - start)
                while not arrived.empty():  # an ack after the status, if the profile sends one
                    arrived.get_nowait()
    return RoundTrips(tuple(samples))


def main(argv: list[str] | None = None) -> None:
    """Print the round-trip summary for ``[profile] [count]``."""
    args = sys.argv[1:] if argv is None else argv
    profile = args[0] if args else "vb6-binary"
    count = int(args[1]) if len(args) > 1 else 500
    started = time.perf_counter()
    result = asyncio.run(measure(profile, count))
    print(f"{profile}: {result.summary()} ({time.perf_counter() - started:.2f} s in all)")


if __name__ == "__main__":
    main()

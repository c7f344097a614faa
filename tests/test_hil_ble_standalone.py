"""A simulated cushion served over BLE to a controller in another process (loopback HCI).

Real clock (`asyncio.run`): TCP sockets are involved. Waits are bounded hang guards, never
timing assertions.
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from bleak import BleakClient, BleakScanner

from firmware_profiles import Codec, load_profile
from firmware_profiles.commands import Query, Reply, SetZone
from hil.ble import SimBleakClient, SimBleakScanner, SimBleWorld, run_standalone_ble

pytestmark = pytest.mark.realtime

PROFILE = load_profile("vb6-binary")
assert PROFILE.ble is not None
BLE = PROFILE.ble

SERVER = """
import asyncio, sys
from hil.ble import run_standalone_ble

async def main():
    def ready(moniker):
        print(moniker, flush=True)
    task = asyncio.ensure_future(run_standalone_ble("vb6-binary", on_ready=ready))
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes
    task.cancel()

asyncio.run(main())
"""


async def drive(moniker: str, level: int) -> list[Reply]:
    """Scan, connect, set a zone, query: what a controller in another process does."""
    codec = Codec(PROFILE)
    parser = codec.reply_parser()
    replies: list[Reply] = []

    def on_notify(_c: object, data: bytearray) -> None:
        replies.extend(r for r in parser.feed(bytes(data)) if isinstance(r, Reply))

    async with SimBleWorld(hci_transport=moniker) as world:
        device = await BleakScanner.find_device_by_name(
            "VB6-SIM", timeout=3.0, backend=SimBleakScanner
        )
        assert device is not None
        async with BleakClient(device, backend=SimBleakClient, world=world) as client:
            assert client.mtu_size == 247
            await client.start_notify(BLE.notify_uuid, on_notify)
            await client.write_gatt_char(BLE.write_uuid, codec.encode(SetZone(1, level)), False)
            await client.write_gatt_char(BLE.write_uuid, codec.encode(Query()), False)
            for _ in range(300):
                if len(replies) >= 2:
                    break
                await asyncio.sleep(0.01)
    return replies


def test_controller_reaches_standalone_cushion_over_loopback_twice() -> None:
    async def main() -> None:
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        server = asyncio.create_task(
            run_standalone_ble("vb6-binary", stop_event=stop, on_ready=ready.set_result)
        )
        async with asyncio.timeout(20):
            moniker = await ready
            assert moniker.startswith("tcp-client:127.0.0.1:")
            first = await drive(moniker, 77)
            second = await drive(moniker, 33)  # a reconnecting host gets a clean controller
            stop.set()
            cushion = await server
        assert [r.kind for r in first] == ["ack", "status"]
        assert first[1].fields["level1"] == 77
        assert second[1].fields["level1"] == 33
        links = [e.detail for e in cushion.recorder.of("link")]
        assert links == ["connected", "disconnected", "connected", "disconnected"]

    asyncio.run(main())


def test_controller_in_another_process() -> None:
    async def main() -> None:
        env = dict(os.environ, PYTHONPATH=os.getcwd())
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SERVER,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            async with asyncio.timeout(30):
                moniker = (await proc.stdout.readline()).decode().strip()
                assert moniker.startswith("tcp-client:"), moniker
                replies = await drive(moniker, 120)
        finally:
            proc.stdin.close()
            async with asyncio.timeout(10):
                await proc.wait()
        assert [r.kind for r in replies] == ["ack", "status"]
        assert replies[1].fields["level1"] == 120

    asyncio.run(main())


def test_remote_world_hosts_no_cushions() -> None:
    async def main() -> None:
        from hil.cushion import SimulatedCushion

        world = SimBleWorld(hci_transport="tcp-client:127.0.0.1:1")
        with pytest.raises(ValueError, match="remote"):
            await world.add_cushion(SimulatedCushion(PROFILE))

    asyncio.run(main())


def test_round_trip_measurement_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """Runs the latency script on a few exchanges; the numbers are printed, never asserted."""
    from hil.ble.latency import measure

    result = asyncio.run(measure("vb6-binary", 50))
    assert len(result.samples) == 50
    assert 0 < result.median_s <= result.p99_s
    with capsys.disabled():
        print(f"\nBLE write->notify (in-process radio): {result.summary()}")

"""The real bleak API against a simulated cushion on the virtual BLE radio (virtual time).

Every test runs on `hil.vtime.run_virtual`: bumble's timers and the cushion's follow the
loop's clock, so a 100 ms advertising interval or a 0.5 s connect time-out costs no wall time
and durations are asserted exactly on that clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from firmware_profiles import Codec, Profile, load_profile
from firmware_profiles.commands import Query, Reply, SetZone
from hil.ble import SimBleakClient, SimBleakScanner, SimBlePeripheral, SimBleWorld
from hil.ble.world import current_world
from hil.cushion import SimulatedCushion
from hil.vtime import run_virtual
from tests.support import advance

VB6 = "vb6-binary"


def cushion_of(profile: str | Profile) -> SimulatedCushion:
    loaded = load_profile(profile) if isinstance(profile, str) else profile
    return SimulatedCushion(loaded, spin_up_s=0.0)


def ble_of(cushion: SimulatedCushion):  # type: ignore[no-untyped-def]
    assert cushion.profile.ble is not None
    return cushion.profile.ble


Scenario = Callable[[SimBleWorld, SimulatedCushion, SimBlePeripheral], Awaitable[None]]


def on_cushion(scenario: Scenario, profile: str | Profile = VB6) -> None:
    async def main() -> None:
        async with SimBleWorld() as world:
            cushion = cushion_of(profile)
            peripheral = await world.add_cushion(cushion)
            async with asyncio.timeout(60):  # virtual seconds: a hang fails instead of hanging
                await scenario(world, cushion, peripheral)

    run_virtual(main())


async def find(peripheral: SimBlePeripheral) -> BLEDevice:
    device = await BleakScanner.find_device_by_name(
        peripheral.name, timeout=2.0, backend=SimBleakScanner
    )
    assert device is not None, "the cushion was not found"
    return device


class Replies:
    """Notification sink that decodes replies with the profile's own codec."""

    def __init__(self, cushion: SimulatedCushion) -> None:
        self.parser = Codec(cushion.profile).reply_parser()
        self.items: list[Reply] = []

    def __call__(self, _char: object, data: bytearray) -> None:
        for item in self.parser.feed(bytes(data)):
            assert isinstance(item, Reply), item
            self.items.append(item)

    async def wait(self, count: int) -> list[Reply]:
        for _ in range(1000):
            if len(self.items) >= count:
                return self.items
            await asyncio.sleep(0.001)
        raise AssertionError(f"only {len(self.items)} of {count} replies arrived")


@pytest.mark.parametrize("profile", [VB6, "nus-text"])
def test_scan_finds_cushion_by_name_and_service_uuid_with_rssi(profile: str) -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        ble = ble_of(cushion)
        clock = asyncio.get_running_loop().time
        start = clock()
        found = await BleakScanner.discover(
            timeout=0.35, return_adv=True, service_uuids=[ble.service_uuid], backend=SimBleakScanner
        )
        assert clock() - start == pytest.approx(0.35)
        assert list(found) == [p.address]
        device, adv = found[p.address]
        assert device.name == p.name == adv.local_name
        assert adv.service_uuids == [ble.service_uuid.lower()]
        assert isinstance(adv.rssi, int) and -127 <= adv.rssi <= 20
        if ble.manufacturer_id is not None:
            assert set(adv.manufacturer_data) == {ble.manufacturer_id}
        # A filter on another service hides it.
        other = await BleakScanner.discover(
            timeout=0.35,
            service_uuids=["0000abcd-0000-1000-8000-00805f9b34fb"],
            backend=SimBleakScanner,
        )
        assert other == []

    on_cushion(scenario, profile)


def test_each_advertisement_is_reported_once_and_within_an_interval() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        seen: list[tuple[float, AdvertisementData]] = []
        clock = asyncio.get_running_loop().time

        def on_adv(_d: BLEDevice, adv: AdvertisementData) -> None:
            seen.append((clock(), adv))

        async with BleakScanner(on_adv, backend=SimBleakScanner):
            start = clock()
            await advance(1.0)
        # 100 ms interval: 10 adverts in a second, each once (no fake scan-response copies).
        assert 9 <= len(seen) <= 11
        assert seen[0][0] - start <= world.advertising_interval_ms / 1000
        assert all(adv.local_name == p.name for _, adv in seen)

    on_cushion(scenario)


def test_connect_discovers_profile_service_and_mtu() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        ble = ble_of(cushion)
        async with BleakClient(await find(p), backend=SimBleakClient) as client:
            assert client.is_connected
            assert client.mtu_size == 247
            assert client.name == p.name
            service = client.services.get_service(ble.service_uuid)
            assert service is not None
            write = service.get_characteristic(ble.write_uuid)
            notify = service.get_characteristic(ble.notify_uuid)
            assert write is not None and notify is not None
            assert write.properties == ["write-without-response"]
            assert notify.properties == ["notify"]
            assert [d.uuid[4:8] for d in notify.descriptors] == ["2902"]  # CCCD
            assert write.max_write_without_response_size == 244
            assert p.connected
        assert not client.is_connected
        await asyncio.sleep(0.01)
        assert not p.connected
        assert [e.detail for e in cushion.recorder.of("link")] == ["connected", "disconnected"]

    on_cushion(scenario)


def test_writes_reach_the_cushion_and_replies_come_back_as_notifications() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        ble = ble_of(cushion)
        codec = Codec(cushion.profile)
        replies = Replies(cushion)
        async with BleakClient(await find(p), backend=SimBleakClient) as client:
            await client.start_notify(ble.notify_uuid, replies)
            assert p.subscribed
            await client.write_gatt_char(ble.write_uuid, codec.encode(SetZone(2, 180)), False)
            await client.write_gatt_char(ble.write_uuid, codec.encode(Query()), False)
            got = await replies.wait(2)
        assert cushion.recorder.commands(SetZone) == [SetZone(2, 180)]
        assert cushion.recorder.last_levels()[2] == 180
        assert [r.kind for r in got] == ["ack", "status"]
        assert got[1].fields["level2"] == 180

    on_cushion(scenario)


def test_nordic_uart_profile_round_trip() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        ble = ble_of(cushion)
        codec = Codec(cushion.profile)
        replies = Replies(cushion)
        async with BleakClient(await find(p), backend=SimBleakClient) as client:
            await client.start_notify(ble.notify_uuid or ble.write_uuid, replies)
            await client.write_gatt_char(ble.write_uuid, codec.encode(Query()), False)
            got = await replies.wait(1)
        assert got[-1].kind == "status"
        assert cushion.recorder.commands(Query) == [Query()]

    on_cushion(scenario, "nus-text")


def test_write_with_response_on_a_shared_characteristic() -> None:
    base = load_profile(VB6)
    assert base.ble is not None
    profile = base.model_copy(
        update={
            "ble": base.ble.model_copy(update={"write_with_response": True, "notify_uuid": None})
        }
    )

    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        ble = ble_of(cushion)
        codec = Codec(cushion.profile)
        replies = Replies(cushion)
        async with BleakClient(await find(p), backend=SimBleakClient) as client:
            char = client.services.get_characteristic(ble.write_uuid)
            assert char is not None
            assert sorted(char.properties) == ["notify", "write"]
            await client.start_notify(char, replies)
            await client.write_gatt_char(char, codec.encode(SetZone(0, 9)))  # response inferred
            assert cushion.recorder.commands(SetZone) == [SetZone(0, 9)]  # before write returned
            assert [r.kind for r in await replies.wait(1)] == ["ack"]

    on_cushion(scenario, profile)


def test_long_replies_are_split_at_the_mtu_and_arrive_in_order() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        ble = ble_of(cushion)
        chunks: list[bytes] = []
        client = BleakClient(await find(p), backend=SimBleakClient, mtu=23)
        async with client:
            assert client.mtu_size == 23
            await client.start_notify(ble.notify_uuid, lambda _c, d: chunks.append(bytes(d)))
            payload = bytes(range(50))
            assert cushion.on_transmit is not None
            cushion.on_transmit(payload)
            await asyncio.sleep(0.01)
        assert [len(c) for c in chunks] == [20, 20, 10]
        assert b"".join(chunks) == payload

    on_cushion(scenario)


def test_device_side_disconnect_fires_bleak_callback_and_cushion_advertises_again() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        lost = asyncio.Event()
        device = await find(p)
        client = BleakClient(device, lambda _c: lost.set(), backend=SimBleakClient)
        await client.connect()
        await p.disconnect()
        await asyncio.wait_for(lost.wait(), 1.0)
        assert not client.is_connected
        assert not p.connected
        # The cushion advertises again: the same client reconnects and works.
        await client.connect()
        assert client.is_connected and p.connected
        await client.disconnect()
        await asyncio.sleep(0.01)
        kinds = [e.detail for e in cushion.recorder.of("link")]
        assert kinds == ["connected", "disconnected", "connected", "disconnected"]
        assert lost.is_set()

    on_cushion(scenario)


def test_client_disconnect_does_not_fire_the_unsolicited_callback() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        calls: list[object] = []
        async with BleakClient(await find(p), calls.append, backend=SimBleakClient):
            pass
        await asyncio.sleep(0.05)
        assert calls == []

    on_cushion(scenario)


@pytest.mark.parametrize("timeout", [0.25, 1.0])
def test_connect_to_ghost_address_fails_after_exactly_the_timeout(timeout: float) -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        clock = asyncio.get_running_loop().time
        client = BleakClient("F0:00:00:00:0D:EA", backend=SimBleakClient, timeout=timeout)
        start = clock()
        with pytest.raises(TimeoutError, match="F0:00:00:00:0D:EA"):
            await client.connect()
        assert clock() - start == pytest.approx(timeout, abs=1e-6)
        assert not client.is_connected
        # The radio is still usable afterwards.
        async with BleakClient(await find(p), backend=SimBleakClient) as again:
            assert again.is_connected

    on_cushion(scenario)


def test_stopped_advertising_hides_the_cushion() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        await p.stop_advertising()
        assert await BleakScanner.discover(timeout=0.5, backend=SimBleakScanner) == []
        await p.start_advertising()
        assert [
            d.address for d in await BleakScanner.discover(timeout=0.5, backend=SimBleakScanner)
        ] == [p.address]

    on_cushion(scenario)


def test_failing_user_callbacks_stay_out_of_bumble(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        ble = ble_of(cushion)
        codec = Codec(cushion.profile)

        def bad_detection(_d: BLEDevice, _a: AdvertisementData) -> None:
            raise RuntimeError("detection boom")

        async with BleakScanner(bad_detection, backend=SimBleakScanner):
            await asyncio.sleep(0.25)
        calls: list[bytes] = []

        def bad_notify(_c: object, data: bytearray) -> None:
            calls.append(bytes(data))
            raise RuntimeError("notify boom")

        async with BleakClient(await find(p), backend=SimBleakClient) as client:
            await client.start_notify(ble.notify_uuid, bad_notify)
            for _ in range(3):
                await client.write_gatt_char(ble.write_uuid, codec.encode(Query()), False)
            await asyncio.sleep(0.01)
            assert client.is_connected
        assert len(calls) >= 3  # every notification still delivered after the first failure

    with caplog.at_level(logging.ERROR):
        on_cushion(scenario)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "detection callback failed" in messages
    assert "notification callback" in messages


def test_world_is_found_by_keyword_or_context() -> None:
    with pytest.raises(LookupError, match="SimBleWorld"):
        current_world()

    async def main() -> None:
        outer = SimBleWorld()
        cushion = cushion_of(VB6)
        async with outer:
            p = await outer.add_cushion(cushion)
            assert current_world() is outer
            async with SimBleWorld() as inner:
                assert current_world() is inner
                # The inner world has no cushion; world= reaches the outer one.
                assert await BleakScanner.discover(timeout=0.3, backend=SimBleakScanner) == []
                found = await BleakScanner.discover(
                    timeout=0.3, backend=SimBleakScanner, world=outer
                )
                assert [d.address for d in found] == [p.address]
            assert current_world() is outer

    run_virtual(main())


def test_profile_without_ble_section_is_refused() -> None:
    async def main() -> None:
        async with SimBleWorld() as world:
            with pytest.raises(ValueError, match=r"\[ble\]"):
                await world.add_cushion(cushion_of("lp4-ascii"))

    run_virtual(main())

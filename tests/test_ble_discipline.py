"""BLE link discipline: capped jittered back-off, a fresh scan on every (re)connect, a
connect lock, a write lock that keeps MTU chunks of one frame together, and failures
classified by bleak's and bleak-retry-connector's exception types, not their text.

Link tests run the real bleak facade over the simulated radio (`hil.ble`) on the virtual
clock: no wall-clock waits, no mocks of our own code.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakCharacteristicNotFoundError,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bleak_retry_connector import (
    BleakAbortedError,
    BleakConnectionError,
    BleakNotFoundError,
    BleakOutOfConnectionSlotsError,
    establish_connection,
)

from controller.backoff import BACKOFF_FLOOR_S, backoff_ceiling, backoff_delay
from controller.errors import DeviceError, DeviceRejected, LinkLost
from controller.transports.base import Endpoint
from controller.transports.ble import BleTransport, BluetoothError, classify
from firmware_profiles import Codec, Profile, load_profile
from firmware_profiles.commands import SetZone, Stop
from hil.ble import SimBleakClient, SimBleakScanner, SimBlePeripheral, SimBleWorld
from hil.ble.backend import SimDeviceDetails
from hil.cushion import SimulatedCushion
from hil.vtime import run_virtual
from tests.support import advance

CAP_S = 1.5**10


# -- back-off ------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, 1, 2, 9, 10, 11, 1_750, 1_800, 10_000, 10**9])
def test_backoff_stays_finite_and_within_the_cap(attempt: int) -> None:
    rng = random.Random(attempt)
    for _ in range(200):
        delay = backoff_delay(attempt, rng=rng)
        assert math.isfinite(delay)
        assert BACKOFF_FLOOR_S <= delay <= BACKOFF_FLOOR_S + CAP_S


def test_the_uncapped_formula_overflowed_where_the_capped_one_does_not() -> None:
    with pytest.raises(OverflowError):
        _ = 1.5**10_000  # what the reconnect loop computed before
    assert backoff_ceiling(10_000) == backoff_ceiling(10) == CAP_S


def test_backoff_ceiling_grows_by_half_per_attempt_up_to_attempt_10() -> None:
    assert [backoff_ceiling(n) for n in range(12)] == [1.5**n for n in range(11)] + [CAP_S]
    assert backoff_ceiling(-5) == 1.0  # a negative attempt counts as 0


def test_backoff_is_deterministic_with_a_seeded_rng() -> None:
    first = [backoff_delay(n, rng=random.Random(7)) for n in range(1, 30)]
    again = [backoff_delay(n, rng=random.Random(7)) for n in range(1, 30)]
    assert first == again


def test_backoff_is_jittered_over_the_whole_range() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(10, rng=rng) - BACKOFF_FLOOR_S for _ in range(2_000)]
    # Full jitter: spread over [0, cap], not bunched near the top like cap * (1 +- 10 %).
    assert min(delays) < 0.05 * CAP_S and max(delays) > 0.95 * CAP_S
    assert 0.4 * CAP_S < sum(delays) / len(delays) < 0.6 * CAP_S


def test_backoff_uses_the_module_rng_by_default() -> None:
    random.seed(3)
    a = backoff_delay(4)
    random.seed(3)
    assert backoff_delay(4) == a


# -- the simulated link --------------------------------------------------------------------

Scenario = Callable[[SimBleWorld, SimulatedCushion, SimBlePeripheral], Awaitable[None]]


def on_radio(scenario: Scenario, profile: Profile | str = "vb6-binary") -> None:
    """Run `scenario` with one simulated cushion on a virtual radio, on the virtual clock."""
    loaded = load_profile(profile) if isinstance(profile, str) else profile

    async def main() -> None:
        async with SimBleWorld() as world:
            cushion = SimulatedCushion(loaded, spin_up_s=0.0)
            peripheral = await world.add_cushion(cushion)
            async with asyncio.timeout(300):  # virtual seconds: a hang fails, never hangs
                await scenario(world, cushion, peripheral)

    run_virtual(main())


def transport_for(
    world: SimBleWorld, cushion: SimulatedCushion, address: str, **client: Any
) -> BleTransport:
    """The real BLE transport, reaching the simulated radio through bleak's backend keyword."""
    return BleTransport(
        Endpoint("ble", address, {"timeout": "2"}),
        cushion.profile,
        scanner_backend=SimBleakScanner,
        client_backend=SimBleakClient,
        backend_kwargs={"world": world, **client},
    )


def generation(device: BLEDevice | None) -> int:
    assert device is not None and isinstance(device.details, SimDeviceDetails)
    return device.details.generation


def links(cushion: SimulatedCushion) -> list[object]:
    return [e.detail for e in cushion.recorder.of("link")]


async def settle() -> None:
    await advance(0.05)  # let the radio deliver what is in flight (virtual time)


def test_a_cushion_that_left_and_came_back_is_found_by_a_fresh_scan() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        transport = transport_for(world, cushion, p.address)
        await transport.open()
        first = transport.device
        assert transport.scans == world.scans == 1
        await world.leave(p)  # switched off: the link drops, the host forgets it
        with pytest.raises(LinkLost):
            await asyncio.wait_for(transport.read(), 1.0)
        # While it is away every open scans, finds nothing and says so, by type.
        with pytest.raises(BluetoothError) as away:
            await transport.open()
        assert away.value.failure.kind == "not-found" and away.value.failure.retry
        assert "cushion scan" in str(away.value)
        await world.come_back(p)  # same address, advertising again
        await transport.open()
        assert transport.scans == world.scans == 3  # one scan per open, none skipped
        assert generation(transport.device) != generation(first)
        await transport._write(Codec(cushion.profile).encode(Stop()))
        await settle()
        assert isinstance(cushion.recorder.commands()[-1], Stop)
        assert links(cushion) == ["connected", "disconnected", "connected"]
        await transport.close()

    on_radio(scenario)


def test_the_ble_device_kept_from_before_would_never_have_reconnected() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        transport = transport_for(world, cushion, p.address)
        await transport.open()
        kept = transport.device
        assert kept is not None
        await world.leave(p)
        await world.come_back(p)
        # What the old reconnect did: the cached BLEDevice, straight to the client.
        with pytest.raises(BleakDeviceNotFoundError):
            await BleakClient(kept, backend=SimBleakClient, world=world).connect()
        # ... and through bleak-retry-connector, which retries it (with its own back-off)
        # and gives up with its typed verdict.
        with pytest.raises(BleakNotFoundError) as stale:
            await establish_connection(
                BleakClient, kept, "kept", max_attempts=2, backend=SimBleakClient, world=world
            )
        assert isinstance(stale.value.__cause__, BleakDeviceNotFoundError)
        assert classify(stale.value).kind == "not-found"
        await transport.open()  # a fresh scan connects at once
        assert p.connected
        await transport.close()

    on_radio(scenario)


def test_two_opens_at_once_make_one_connection() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        transport = transport_for(world, cushion, p.address)
        await asyncio.gather(transport.open(), transport.open(), transport.open())
        await settle()
        assert transport.scans == 1  # the others waited on the connect lock, found it up
        assert links(cushion) == ["connected"]
        await transport.close()
        await settle()
        assert links(cushion) == ["connected", "disconnected"]

    on_radio(scenario)


def test_close_cuts_a_connect_in_progress_short() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        await p.stop_advertising()  # the open will scan for its full 2 s
        transport = transport_for(world, cushion, p.address)
        clock = asyncio.get_running_loop().time
        opening = asyncio.create_task(transport.open())
        await advance(0.5)
        start = clock()
        await transport.close()
        assert clock() - start < 0.5  # did not wait for the scan to time out (virtual clock)
        with pytest.raises(LinkLost, match="closed while it was being opened"):
            await opening
        await p.start_advertising()
        await transport.open()  # the transport is usable again
        assert p.connected
        await transport.close()

    on_radio(scenario)


def test_a_cancelled_open_is_cancelled_not_reported_as_a_link_failure() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        await p.stop_advertising()
        transport = transport_for(world, cushion, p.address)
        opening = asyncio.create_task(transport.open())
        await advance(0.5)
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        await p.start_advertising()
        await transport.open()
        assert p.connected
        await transport.close()

    on_radio(scenario)


def _long_frames(codec: Codec, count: int) -> list[bytes]:
    """`count` frames of four set-zone commands each (52 bytes: three 20-byte chunks)."""
    return [
        b"".join(codec.encode(SetZone(zone, n % 9 + 1, 1.0)) for zone in range(4))
        for n in range(count)
    ]


def test_concurrent_long_frames_reach_the_cushion_whole_and_in_order() -> None:
    base = load_profile("nus-text")
    assert base.ble is not None and base.frames.encoding == "ascii"
    # Writes with response: each chunk waits for the cushion's answer, so without the
    # write lock another frame's chunk would slip in between (as on BlueZ, where every
    # write is a D-Bus round trip).
    profile = base.model_copy(
        update={"ble": base.ble.model_copy(update={"write_with_response": True})}
    )

    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        transport = transport_for(world, cushion, p.address, mtu=23)  # 20-byte chunks
        await transport.open()
        assert transport.mtu_size == 23
        frames = _long_frames(Codec(profile), 6)
        assert all(len(f) > 40 for f in frames)  # three chunks each
        p.received.clear()
        await asyncio.gather(*(transport._write(f) for f in frames))
        await settle()
        chunks = list(p.received)
        assert len(chunks) > len(frames) and all(len(c) <= 20 for c in chunks)
        # Whole and in order: the chunks rebuild the frames one after another ...
        assert b"".join(chunks) == b"".join(frames)
        # ... and each frame begins on a chunk boundary (no frame shares a chunk).
        starts, at = set(), 0
        for chunk in chunks:
            starts.add(at)
            at += len(chunk)
        offsets = [sum(map(len, frames[:i])) for i in range(len(frames))]
        assert set(offsets) <= starts
        assert not cushion.recorder.of("bad_frame")
        got = cushion.recorder.commands(SetZone)
        assert len(got) == 4 * len(frames)
        await transport.close()

    on_radio(scenario, profile)


def test_a_writer_cancelled_midway_still_finishes_its_frame_before_the_next() -> None:
    base = load_profile("nus-text")
    assert base.ble is not None
    profile = base.model_copy(
        update={"ble": base.ble.model_copy(update={"write_with_response": True})}
    )

    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        transport = transport_for(world, cushion, p.address, mtu=23)
        await transport.open()
        codec = Codec(profile)
        (frame,) = _long_frames(codec, 1)
        stop = codec.encode(Stop())
        p.received.clear()
        writer = asyncio.create_task(transport._write(frame))
        for _ in range(10_000):  # loop passes, not time: until the first piece is out
            if p.received:
                break
            await asyncio.sleep(0)
        assert len(p.received) == 1  # the first piece is out, the rest are not
        writer.cancel()  # e.g. the writer task cancelled when the session closes
        await transport._write(stop)  # the all-off that follows
        with pytest.raises(asyncio.CancelledError):
            await writer
        await settle()
        assert b"".join(p.received) == frame + stop
        assert not cushion.recorder.of("bad_frame")
        assert isinstance(cushion.recorder.commands()[-1], Stop)
        await transport.close()

    on_radio(scenario, profile)


def test_a_binary_frame_larger_than_the_mtu_is_refused_before_any_byte_goes_out() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        transport = transport_for(world, cushion, p.address, mtu=23)
        await transport.open()
        p.received.clear()
        with pytest.raises(DeviceRejected, match="does not fit the MTU"):
            await transport._write(bytes(40))
        await settle()
        assert not p.received
        await transport.close()

    on_radio(scenario)


def test_a_write_after_the_link_dropped_is_link_lost() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        transport = transport_for(world, cushion, p.address)
        await transport.open()
        await p.disconnect()
        with pytest.raises(LinkLost):
            await asyncio.wait_for(transport.read(), 1.0)
        with pytest.raises(LinkLost):
            await transport._write(Codec(cushion.profile).encode(Stop()))

    on_radio(scenario)


# -- failures classified by type, over the simulated link ------------------------------------


def test_a_write_the_cushion_refuses_is_rejected_with_the_att_error() -> None:
    base = load_profile("vb6-binary")
    assert base.ble is not None and base.ble.notify_uuid is not None
    cushion_side = base
    # The controller's profile names the notify characteristic as the one to write: the
    # cushion answers the ATT write with "write not permitted".
    wrong = base.model_copy(
        update={
            "ble": base.ble.model_copy(
                update={"write_uuid": base.ble.notify_uuid, "write_with_response": True}
            )
        }
    )

    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        transport = BleTransport(
            Endpoint("ble", p.address),
            wrong,
            scanner_backend=SimBleakScanner,
            client_backend=SimBleakClient,
            backend_kwargs={"world": world},
        )
        await transport.open()
        with pytest.raises(DeviceRejected) as refused:
            await transport._write(Codec(wrong).encode(Stop()))
        cause = refused.value.__cause__
        assert isinstance(cause, BleakGATTProtocolError)
        assert cause.code == BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED
        assert classify(cause).kind == "refused" and not classify(cause).retry
        assert refused.value.hint is not None and "write characteristic" in refused.value.hint
        assert p.connected  # a refused write is not a lost link
        await transport.close()

    on_radio(scenario, cushion_side)


def test_a_device_without_the_profiles_service_is_refused_and_not_left_connected() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        transport = BleTransport(
            Endpoint("ble", p.address),
            load_profile("nus-text"),  # a vb6 cushion at that address
            scanner_backend=SimBleakScanner,
            client_backend=SimBleakClient,
            backend_kwargs={"world": world},
        )
        with pytest.raises(BluetoothError, match="does not offer the service") as wrong:
            await transport.open()
        assert wrong.value.failure.kind == "wrong-device" and not wrong.value.failure.retry
        await settle()
        assert links(cushion) == ["connected", "disconnected"]  # undone, not leaked

    on_radio(scenario)


def test_a_missing_notify_characteristic_is_classified_by_type() -> None:
    base = load_profile("vb6-binary")
    assert base.ble is not None
    ghost = "0000fff9-0000-1000-8000-00805f9b34fb"
    wrong = base.model_copy(update={"ble": base.ble.model_copy(update={"notify_uuid": ghost})})

    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        transport = BleTransport(
            Endpoint("ble", p.address),
            wrong,
            scanner_backend=SimBleakScanner,
            client_backend=SimBleakClient,
            backend_kwargs={"world": world},
        )
        with pytest.raises(BluetoothError, match="refused notifications") as refused:
            await transport.open()
        assert isinstance(refused.value.__cause__, BleakCharacteristicNotFoundError)
        assert refused.value.failure.kind == "wrong-device"
        await settle()
        assert links(cushion) == ["connected", "disconnected"]

    on_radio(scenario)


def test_a_cushion_nobody_can_find_is_not_found_with_a_scan_hint() -> None:
    async def scenario(world: SimBleWorld, cushion: SimulatedCushion, p: SimBlePeripheral) -> None:
        transport = BleTransport(
            Endpoint("ble", "NOBODY-HERE", {"timeout": "1"}),
            cushion.profile,
            scanner_backend=SimBleakScanner,
            client_backend=SimBleakClient,
            backend_kwargs={"world": world},
        )
        with pytest.raises(BluetoothError, match="'NOBODY-HERE' answered within 1 s") as missing:
            await transport.open()
        assert missing.value.failure.kind == "not-found"
        assert missing.value.hint is not None and "cushion scan" in missing.value.hint

    on_radio(scenario)


def _system_bus() -> str:
    # Where dbus-fast (bleak's D-Bus library) looks for the system bus.
    address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/var/run/dbus/system_bus_socket")
    return address.removeprefix("unix:path=").split(",")[0]


def test_the_real_bluez_path_fails_with_a_typed_verdict_and_a_hint() -> None:
    """No mock: the real bleak backend on this machine (in CI: no D-Bus, no BlueZ)."""
    endpoint = Endpoint("ble", "F0:CA:00:00:00:02", {"timeout": "0.5"})
    transport = BleTransport(endpoint, load_profile("vb6-binary"))
    no_bus = not os.path.exists(_system_bus())

    async def main() -> None:
        with pytest.raises(BluetoothError) as failed:
            await transport.open()
        assert isinstance(failed.value, DeviceError) and failed.value.hint
        if no_bus:
            assert isinstance(failed.value.__cause__, FileNotFoundError)
            assert failed.value.failure.kind == "no-bluetooth"
            assert "--sim" in failed.value.hint

    asyncio.run(main())


# -- classify: the library's own exception types ---------------------------------------------


def _caused(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


Reason = BleakBluetoothNotAvailableReason

CASES: list[tuple[BaseException, str, bool]] = [
    (FileNotFoundError(2, "No such file or directory"), "no-bluetooth", True),
    (ConnectionRefusedError(111, "Connection refused"), "no-bluetooth", True),
    (PermissionError(13, "Permission denied"), "permission", True),
    (BleakBluetoothNotAvailableError("no adapters", Reason.NO_BLUETOOTH), "no-bluetooth", True),
    (BleakBluetoothNotAvailableError("central", Reason.NO_BLE_CENTRAL_ROLE), "no-bluetooth", True),
    (BleakBluetoothNotAvailableError("Turn on", Reason.POWERED_OFF), "bluetooth-off", True),
    (BleakBluetoothNotAvailableError("denied", Reason.DENIED_BY_SYSTEM), "permission", True),
    (BleakBluetoothNotAvailableError("?", Reason.UNKNOWN), "no-bluetooth", True),
    (BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"]), "bluetooth-off", True),
    (BleakDBusError("org.freedesktop.DBus.Error.AccessDenied", []), "permission", True),
    (BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", []), "no-bluetooth", True),
    (BleakDBusError("org.freedesktop.DBus.Error.UnknownObject", []), "not-found", True),
    (BleakDBusError("org.bluez.Error.InProgress", ["In Progress"]), "busy", True),
    (BleakDBusError("org.bluez.Error.NotPermitted", ["Write not permitted"]), "refused", False),
    (BleakDBusError("org.bluez.Error.Failed", ["le-connection-abort-by-local"]), "other", True),
    (BleakDeviceNotFoundError("F0:CA:00:00:00:02", "gone"), "not-found", True),
    (BleakCharacteristicNotFoundError("6e400002"), "wrong-device", False),
    (BleakGATTProtocolError(0x03), "refused", False),
    (BleakNotFoundError("x - y: Failed to connect after 3 attempt(s)"), "not-found", True),
    (BleakOutOfConnectionSlotsError("no slot"), "out-of-slots", True),
    (BleakAbortedError("aborted"), "aborted", True),
    (BleakConnectionError("failed"), "other", True),
    (BleakError("something new"), "other", True),
    (TimeoutError(), "not-found", True),
    (EOFError(), "link", True),
    (BrokenPipeError(32, "Broken pipe"), "link", True),
    # bleak-retry-connector's verdict, when what it wraps says more, gives way to it ...
    (
        _caused(BleakConnectionError("failed"), BleakDBusError("org.bluez.Error.NotReady", [])),
        "bluetooth-off",
        True,
    ),
    (
        _caused(
            BleakConnectionError("failed"),
            BleakBluetoothNotAvailableError("denied", Reason.DENIED_BY_USER),
        ),
        "permission",
        True,
    ),
    # ... and stands when it says more than what it wraps.
    (
        _caused(
            BleakAbortedError("aborted"),
            BleakDBusError("org.bluez.Error.Failed", ["le-connection-abort-by-local"]),
        ),
        "aborted",
        True,
    ),
    (_caused(BleakNotFoundError("timed out"), TimeoutError()), "not-found", True),
    (_caused(BleakOutOfConnectionSlotsError("slots"), TimeoutError()), "out-of-slots", True),
]


@pytest.mark.parametrize(("exc", "kind", "retry"), CASES, ids=lambda v: type(v).__name__)
def test_failures_are_classified_by_type(exc: BaseException, kind: str, retry: bool) -> None:
    failure = classify(exc)
    assert (failure.kind, failure.retry) == (kind, retry)
    assert failure.hint.endswith(".") and "Traceback" not in failure.hint


def test_classification_ignores_message_text() -> None:
    # The old matcher read "not found", "powered" and "permission" out of any message.
    misleading = BleakError("adapter powered off, permission denied, device not found")
    assert classify(misleading).kind == "other"
    assert classify(TimeoutError("no slot: connection slot")).kind == "not-found"


def test_hints_stay_user_friendly() -> None:
    assert "--sim" in classify(FileNotFoundError()).hint
    assert "bluetoothctl power on" in classify(BleakDBusError("org.bluez.Error.NotReady", [])).hint
    assert "'bluetooth' group" in classify(PermissionError()).hint
    assert "cushion scan" in classify(BleakDeviceNotFoundError("a")).hint

"""bleak backends over a `SimBleWorld`: the real bleak API against simulated cushions.

    async with SimBleWorld() as world:
        await world.add_cushion(cushion)
        device = await BleakScanner.find_device_by_name("VB6-SIM", backend=SimBleakScanner)
        async with BleakClient(device, backend=SimBleakClient) as client:
            await client.start_notify(notify_uuid, on_reply)
            await client.write_gatt_char(write_uuid, frame, response=False)

Both backends take ``world=`` (bleak forwards unknown keywords); without it they use the
current world (see `hil.ble.world`). Each scanner and client gets its own central `Device`
(adapter) on the radio while it runs. Differences from a real adapter: RSSI is always
-50 dBm; a write kind the characteristic does not advertise is still accepted; the
disconnected callback fires only on an unsolicited disconnect (bleak's documented contract).

Like BlueZ, the client connects only to a device the host still knows: a `BLEDevice` whose
cushion has since left (`SimBleWorld.leave`) fails with `BleakDeviceNotFoundError` until a
new scan has seen it again. A client made from an address string skips the check (bleak's
BlueZ backend scans for it itself).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.device import Peer

from hil.ble.advert import parse_advertising_data, uuid_text
from hil.ble.world import current_world

if TYPE_CHECKING:
    from collections.abc import Callable

    from bleak.args import SizedBuffer
    from bleak.backends.client import NotifyCallback
    from bleak.backends.scanner import AdvertisementDataCallback

    from hil.ble.world import SimBleWorld

log = logging.getLogger(__name__)

DEFAULT_MTU = 247  # what phones and BlueZ ask for: one 251-byte LL packet

_PROPERTY_NAMES = (
    (0x01, "broadcast"),
    (0x02, "read"),
    (0x04, "write-without-response"),
    (0x08, "write"),
    (0x10, "notify"),
    (0x20, "indicate"),
    (0x40, "authenticated-signed-writes"),
    (0x80, "extended-properties"),
)
_GAP_DEVICE_NAME = "00002a00-0000-1000-8000-00805f9b34fb"


@dataclass(frozen=True, slots=True)
class SimDeviceDetails:
    """``BLEDevice.details`` of a scanned cushion: its radio address and cache generation."""

    address: hci.Address
    generation: int


class SimBleakScanner(BaseBleakScanner):
    """bleak scanner backend: passive scan of the simulated radio (one report per advert)."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        world: SimBleWorld | None = None,
        **kwargs: Any,  # bluez=, cb=: meaningless here
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self.world = world or current_world()
        self.scanning_mode = scanning_mode
        self._device: Any = None

    async def start(self) -> None:
        """Start scanning; ``seen_devices`` is cleared; the world counts the scan."""
        self.seen_devices = {}
        self.world.scans += 1
        if self._device is None:
            self._device = await self.world.new_device("bleak-scanner")
            self._device.on("advertisement", self._on_advertisement)
        # Passive whatever bleak asked: bumble's software controller answers an active scan
        # with a fake scan response that repeats every AD item (pitfall 2).
        await self._device.start_scanning(active=False, filter_duplicates=False)

    async def stop(self) -> None:
        """Stop scanning and take this scanner's adapter off the radio."""
        device, self._device = self._device, None
        if device is not None:
            device.remove_listener("advertisement", self._on_advertisement)
            await device.stop_scanning()
            await self.world.remove_device(device)

    def _on_advertisement(self, advertisement: Any) -> None:
        # Runs inside bumble's packet handling: a failing user callback must not escape into
        # bumble (pitfall 3).
        try:
            if advertisement.is_scan_response:
                return  # bumble's fake copy of the advertisement (pitfall 2)
            parsed = parse_advertising_data(advertisement.data_bytes)
            if not self.is_allowed_uuid(parsed.service_uuids):
                return
            data = AdvertisementData(
                local_name=parsed.local_name,
                manufacturer_data=parsed.manufacturer_data,
                service_data=parsed.service_data,
                service_uuids=parsed.service_uuids,
                tx_power=parsed.tx_power,
                rssi=advertisement.rssi,
                platform_data=(advertisement,),
            )
            address = advertisement.address.to_string(False)
            details = SimDeviceDetails(advertisement.address, self.world.remember(address))
            device = self.create_or_update_device(
                address, address, parsed.local_name, details, data
            )
            self.call_detection_callbacks(device, data)
        except Exception:
            log.exception("BLE detection callback failed")


class SimBleakClient(BaseBleakClient):
    """bleak client backend: one connection to a simulated cushion over the virtual radio.

    ``timeout`` (s) bounds the whole connect (link, MTU exchange, discovery); a connect to
    an address nobody advertises raises `TimeoutError` after exactly ``timeout`` on the
    loop's clock. ``mtu=`` is the ATT MTU asked for (default 247).
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        world: SimBleWorld | None = None,
        mtu: int = DEFAULT_MTU,
        **kwargs: Any,  # bluez=, winrt=: meaningless here
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self.world = world or current_world()
        self._wanted_services = services
        self._wanted_mtu = mtu
        self._name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        details = (
            address_or_ble_device.details if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._scanned = details if isinstance(details, SimDeviceDetails) else None
        self._device: Any = None
        self._connection: Any = None
        self._peer: Any = None
        self._mtu = att.ATT_DEFAULT_MTU
        self._closing = False
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        """The peripheral's GAP device name (or the advertised name, or the address)."""
        return self._name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU (bytes); 23 before the exchange."""
        return self._mtu

    @property
    def is_connected(self) -> bool:
        """Return True while the link is up."""
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, exchange MTU, optionally pair, discover services; all within ``timeout``."""
        if self._connection is not None:
            return
        scanned = self._scanned
        if scanned is not None and not self.world.knows(self.address, scanned.generation):
            # BlueZ's words when a BLEDevice outlives its D-Bus object (bluezdbus/client.py).
            raise BleakDeviceNotFoundError(
                self.address,
                f"Device with address {self.address} was not found. "
                "It may have been removed from BlueZ when scanning stopped.",
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        device = await self.world.new_device("bleak-client")
        try:
            try:
                connection = await device.connect(
                    hci.Address(self.address), timeout=max(0.0, deadline - loop.time())
                )
            except core.TimeoutError as error:
                raise TimeoutError(
                    f"no BLE device at {self.address} answered within {self._timeout} s"
                ) from error
            except core.ConnectionError as error:
                raise BleakError(f"could not connect to {self.address}: {error}") from error
            self._device, self._connection, self._closing = device, connection, False
            connection.on("disconnection", self._on_disconnection)
            async with asyncio.timeout_at(deadline):
                peer = Peer(connection)
                self._peer = peer
                self._mtu = await peer.request_mtu(self._wanted_mtu)
                if pair:
                    await connection.pair()
                self.services = await self._discover(peer)
                await self._read_name(peer)
        except BaseException:
            self._connection = self._peer = self._device = None
            await self.world.remove_device(device)
            raise

    async def disconnect(self) -> None:
        """Disconnect (no disconnected callback: it is for unsolicited disconnects)."""
        connection, device = self._connection, self._device
        if connection is None:
            return
        self._closing = True
        try:
            await connection.disconnect()
        finally:
            self._connection = self._peer = self._device = None
            self._subscribers.clear()
            await self.world.remove_device(device)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair (Just Works, keys kept in memory for this connection)."""
        await self._require_connection().pair()

    async def unpair(self) -> None:
        """Forget pairing keys: the simulator keeps none beyond the connection, so a no-op."""

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a characteristic's value."""
        return bytearray(await self._read(characteristic.handle))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a descriptor's value."""
        return bytearray(await self._read(descriptor.handle))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Write a characteristic: a write request (``response=True``) or a write command."""
        await self._write(characteristic.handle, bytes(data), response)

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Write a descriptor (always with response)."""
        await self._write(descriptor.handle, bytes(data), True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Subscribe to notifications (indications if the characteristic has only those)."""
        peer = self._require_peer()

        def deliver(value: bytes) -> None:
            # Runs inside bumble's packet handling (pitfall 3): stop user errors here.
            try:
                callback(bytearray(value))
            except Exception:
                log.exception("notification callback for %s failed", characteristic.uuid)

        self._subscribers[characteristic.handle] = deliver
        await peer.gatt_client.subscribe(characteristic.obj, deliver)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe from notifications."""
        peer = self._require_peer()
        deliver = self._subscribers.pop(characteristic.handle, None)
        await peer.gatt_client.unsubscribe(characteristic.obj, deliver)

    def _require_connection(self) -> Any:
        if self._connection is None:
            raise BleakError("Not connected")
        return self._connection

    def _require_peer(self) -> Any:
        self._require_connection()
        return self._peer

    async def _read(self, handle: int) -> bytes:
        try:
            value: bytes = await self._require_peer().gatt_client.read_value(handle)
        except att.ATT_Error as error:
            raise BleakGATTProtocolError(error.error_code) from error
        return value

    async def _write(self, handle: int, data: bytes, response: bool) -> None:
        try:
            await self._require_peer().gatt_client.write_value(handle, data, with_response=response)
        except att.ATT_Error as error:
            raise BleakGATTProtocolError(error.error_code) from error

    async def _discover(self, peer: Any) -> BleakGATTServiceCollection:
        wanted = [core.UUID(u) for u in self._wanted_services or ()]
        collection = BleakGATTServiceCollection()
        for service in await peer.discover_services(wanted):
            bleak_service = BleakGATTService(
                service, service.handle, uuid_text(service.uuid.uuid_128_bytes)
            )
            collection.add_service(bleak_service)
            for char in await service.discover_characteristics():
                props = [name for bit, name in _PROPERTY_NAMES if char.properties & bit]
                bleak_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    uuid_text(char.uuid.uuid_128_bytes),
                    props,  # type: ignore[arg-type]  # names are bleak's Literal values
                    lambda: self._mtu - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for desc in await char.discover_descriptors():
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            desc, desc.handle, uuid_text(desc.type.uuid_128_bytes), bleak_char
                        )
                    )
        return collection

    async def _read_name(self, peer: Any) -> None:
        assert self.services is not None
        char = self.services.get_characteristic(_GAP_DEVICE_NAME)
        if char is not None:
            self._name = bytes(await peer.gatt_client.read_value(char.handle)).decode(
                errors="replace"
            )

    def _on_disconnection(self, reason: int) -> None:
        unsolicited = not self._closing
        device = self._device
        self._connection = self._peer = self._device = None
        self._subscribers.clear()
        loop = asyncio.get_running_loop()
        if device is not None:
            task = loop.create_task(self.world.remove_device(device))
            _background.add(task)
            task.add_done_callback(_background.discard)
        if unsolicited and self._disconnected_callback is not None:
            loop.call_soon(self._disconnected_callback)


_background: set[asyncio.Task[None]] = set()

"""An in-process virtual radio: bumble software controllers on one `LocalLink`.

The bleak backends in `hil.ble.backend` find their world through the ``world=`` keyword
(bleak forwards unknown keywords to the backend) or, failing that, the *current* world: the
one whose ``async with SimBleWorld() as world:`` block encloses the caller (a context
variable, so concurrent tests in other tasks each see their own).

The world also plays the host's device cache, as BlueZ keeps one: a scan that sees a cushion
records it (a new *generation* when it was not known), and `SimBleWorld.leave` forgets it as
BlueZ drops a device it no longer sees. A client handed a `BLEDevice` from before that fails
with `BleakDeviceNotFoundError`, as on BlueZ; a fresh scan gives a device that connects.
`SimBleWorld.scans` counts the scans started, so a test can see that a reconnect rescanned.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
from typing import TYPE_CHECKING, Any

from bumble import hci
from bumble.device import Device
from bumble.link import LocalLink

from hil.ble.advert import advertised_name
from hil.ble.peripheral import SimBlePeripheral
from hil.ble.radio import QuietHost, SimController

if TYPE_CHECKING:
    from types import TracebackType

    from hil.cushion import SimulatedCushion

_current: contextvars.ContextVar[SimBleWorld | None] = contextvars.ContextVar(
    "hil_ble_world", default=None
)


def current_world() -> SimBleWorld:
    """Return the world of the enclosing ``async with SimBleWorld()``; LookupError if none."""
    world = _current.get()
    if world is None:
        raise LookupError(
            "no simulated BLE world: pass world=... to BleakScanner/BleakClient "
            "or run inside 'async with SimBleWorld() as world:'"
        )
    return world


class SimBleWorld:
    """A virtual radio shared by simulated cushions (peripherals) and bleak backends (centrals).

    ``advertising_interval_ms`` is the cushions' advertising period (default 100 ms): a scan
    finds a cushion, and a connect reaches it, within about one period. Devices are created
    lazily inside the running loop (bumble's controller needs one).
    """

    def __init__(
        self, *, advertising_interval_ms: float = 100.0, hci_transport: str | None = None
    ) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self.advertising_interval_ms = advertising_interval_ms
        self.hci_transport = hci_transport
        self._adapter: Device | None = None
        self._transport: Any = None
        self.peripherals: list[SimBlePeripheral] = []
        self._devices: list[Device] = []
        self._serial = itertools.count(1)
        self._token: contextvars.Token[SimBleWorld | None] | None = None
        self.scans = 0  # scanners started on this radio (bleak starts one per scan)
        self._known: dict[str, int] = {}  # the host's device cache: address -> generation
        self._generations = itertools.count(1)

    def __repr__(self) -> str:
        return f"SimBleWorld({len(self.peripherals)} cushion(s), {len(self._devices)} device(s))"

    async def __aenter__(self) -> SimBleWorld:
        self._token = _current.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.close()
        finally:
            if self._token is not None:
                _current.reset(self._token)
                self._token = None

    async def add_cushion(
        self,
        cushion: SimulatedCushion,
        *,
        address: str | None = None,
        name: str | None = None,
        advertise: bool = True,
    ) -> SimBlePeripheral:
        """Host ``cushion``'s profile GATT service on a new peripheral and start advertising.

        ``name`` defaults to the profile's first name pattern with ``*`` as ``-SIM``;
        ``address`` (``"F0:CA:00:00:00:01"`` style, random static) is allocated if omitted.
        ValueError if the profile has no ``[ble]`` section.
        """
        if self.hci_transport is not None:
            raise ValueError("a world on a remote HCI transport hosts no cushions of its own")
        settings = cushion.profile.ble
        if settings is None:
            raise ValueError(f"profile '{cushion.profile.name}' has no [ble] section")
        name = name or advertised_name(settings.name_patterns, cushion.name)
        device = await self._local_device(name, address or self._address(0xCA))
        peripheral = SimBlePeripheral(
            cushion,
            device,
            settings,
            name=name,
            advertising_interval_ms=self.advertising_interval_ms,
        )
        self.peripherals.append(peripheral)
        if advertise:
            await peripheral.start_advertising()
        return peripheral

    async def leave(self, peripheral: SimBlePeripheral) -> None:
        """Take ``peripheral`` out of reach (switched off, out of range) until `come_back`.

        Its link drops from the device side (the central's disconnected callback fires), it
        stops advertising, and the host forgets it: a `BLEDevice` scanned before is stale.
        """
        await peripheral.stop_advertising()  # first, so the drop does not re-advertise
        await peripheral.disconnect()
        self.forget(peripheral.address)

    async def come_back(self, peripheral: SimBlePeripheral) -> None:
        """Bring ``peripheral`` back under the same address: it advertises again."""
        await peripheral.start_advertising()

    def remember(self, address: str) -> int:
        """Record that a scan saw ``address``; return its device-cache generation."""
        key = address.upper()
        generation = self._known.get(key)
        if generation is None:
            generation = self._known[key] = next(self._generations)
        return generation

    def forget(self, address: str) -> None:
        """Drop ``address`` from the host's device cache, as BlueZ drops an unseen device."""
        self._known.pop(address.upper(), None)

    def knows(self, address: str, generation: int) -> bool:
        """Tell whether a device scanned as ``generation`` is still in the device cache."""
        return self._known.get(address.upper()) == generation

    def peripheral(self, address: str) -> SimBlePeripheral | None:
        """Return the simulated cushion at ``address`` (case-insensitive), or None."""
        wanted = address.upper()
        return next((p for p in self.peripherals if p.address.upper() == wanted), None)

    async def new_device(self, name: str, address: str | None = None) -> Device:
        """Return a powered-on bumble `Device` on this radio (a central's adapter, a peripheral).

        With ``hci_transport`` set, every call returns the one shared remote adapter.
        """
        if self.hci_transport is not None:
            return await self._remote_adapter()
        return await self._local_device(name, address or self._address(0xC0))

    async def _local_device(self, name: str, address: str) -> Device:
        controller = SimController(name, link=self.link)
        host = QuietHost(controller_source=controller, controller_sink=controller)
        device = Device(name=name, address=hci.Address(address), host=host)
        await device.power_on()
        self._devices.append(device)
        return device

    async def remove_device(self, device: Device) -> None:
        """Take a device off the radio (its links are dropped first); the shared adapter stays."""
        if device is self._adapter:
            return
        for connection in list(device.connections.values()):
            with contextlib.suppress(Exception):  # best effort while tearing down
                await connection.disconnect()
        controller: Any = device.host.hci_sink
        if controller in self.link.controllers:
            self.link.remove_controller(controller)
        if device in self._devices:
            self._devices.remove(device)

    async def close(self) -> None:
        """Stop every peripheral and take every device off the radio."""
        for peripheral in self.peripherals:
            await peripheral.close()
        for device in list(self._devices):
            await self.remove_device(device)
        self.peripherals.clear()
        adapter, self._adapter = self._adapter, None
        if adapter is not None:
            for connection in list(adapter.connections.values()):
                with contextlib.suppress(Exception):
                    await connection.disconnect()
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()

    async def _remote_adapter(self) -> Device:
        if self._adapter is None:
            from bumble.transport import open_transport

            assert self.hci_transport is not None
            transport = await open_transport(self.hci_transport)
            try:
                host = QuietHost(controller_source=transport.source, controller_sink=transport.sink)
                device = Device(
                    name="cushion-controller", address=hci.Address(self._address(0xC0)), host=host
                )
                await device.power_on()
            except BaseException:
                await transport.close()
                raise
            self._transport, self._adapter = transport, device
        return self._adapter

    def _address(self, kind: int) -> str:
        taken = {str(d.public_address).upper() for d in self._devices}
        taken |= {str(d.random_address).upper() for d in self._devices}
        while True:
            n = next(self._serial)
            # 0xF0 top byte: the two top bits set mark a random static address.
            address = f"F0:{kind:02X}:00:00:{n >> 8 & 0xFF:02X}:{n & 0xFF:02X}"
            if address not in taken:  # never reuse one a caller chose explicitly
                return address

"""Bluetooth LE transport on bleak, connecting through bleak-retry-connector."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from controller.errors import DeviceError, DeviceRejected, LinkLost, UsageError
from controller.transports.base import Transport

if TYPE_CHECKING:
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.device import BLEDevice

    from controller.transports.base import Endpoint
    from firmware_profiles import Profile

_ATT_OVERHEAD = 3  # opcode + handle: what an ATT write carries besides the value
_CONNECT_ATTEMPTS = 3


def is_address(text: str) -> bool:
    """Tell whether `text` looks like a BLE address (AA:BB:CC:DD:EE:FF) rather than a name."""
    parts = text.split(":")
    return len(parts) == 6 and all(len(p) == 2 for p in parts)


class BleTransport(Transport):
    """A cushion on Bluetooth LE: the profile's service, write and notify characteristics."""

    name = "ble"
    reconnects = True  # a radio link comes back; a session pauses and waits for it

    def __init__(
        self,
        endpoint: Endpoint,
        profile: Profile,
        *,
        scanner_backend: type[Any] | None = None,
        client_backend: type[Any] | None = None,
        backend_kwargs: dict[str, Any] | None = None,
        scan_timeout_s: float = 5.0,
    ) -> None:
        super().__init__(endpoint, profile)
        self._scanner_kwargs: dict[str, Any] = dict(backend_kwargs or {})
        self._client_kwargs: dict[str, Any] = dict(backend_kwargs or {})
        if scanner_backend is not None:
            self._scanner_kwargs["backend"] = scanner_backend
        if client_backend is not None:
            self._client_kwargs["backend"] = client_backend
        self.scan_timeout_s = float(endpoint.options.get("timeout", scan_timeout_s))
        self._client: BleakClient | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._device: BLEDevice | None = None

    @property
    def mtu_size(self) -> int:
        """Return the negotiated ATT MTU (23 before any exchange)."""
        return self._client.mtu_size if self._client is not None else 23

    async def open(self) -> None:
        """Find the cushion, connect with retries, check its services, subscribe to replies."""
        ble = self.profile.ble
        if ble is None:
            raise UsageError(
                f"profile '{self.profile.name}' has no [ble] section.",
                key="ble",
                hint="Use a profile that describes the cushion's BLE "
                "service, or connect over --port.",
            )
        device = self._device or await self._find()
        self._device = device
        self._queue = asyncio.Queue()
        try:
            client = await establish_connection(
                BleakClient,
                device,
                device.name or device.address,
                disconnected_callback=self._on_disconnect,
                max_attempts=_CONNECT_ATTEMPTS,
                **self._client_kwargs,
            )
        except (BleakError, TimeoutError) as exc:
            raise DeviceError(
                f"cannot connect to {device.address}: {exc}.", hint=_hint(exc)
            ) from exc
        self._client = client
        service = client.services.get_service(ble.service_uuid)
        write = service.get_characteristic(ble.write_uuid) if service is not None else None
        if service is None or write is None:
            await self.close()
            raise DeviceError(
                f"the device at {device.address} does not offer the service of profile "
                f"'{self.profile.name}' ({ble.service_uuid}).",
                hint="It may be a different device: check the address with 'cushion scan'.",
            )
        if ble.notify_uuid is not None:
            try:
                await client.start_notify(ble.notify_uuid, self._on_notify)
            except BleakError as exc:
                await self.close()
                raise DeviceError(
                    f"the cushion refused notifications: {exc}.",
                    hint="Check the profile's notify characteristic.",
                ) from exc

    async def close(self) -> None:
        """Disconnect; never raises."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(BleakError, TimeoutError, OSError):
                await asyncio.wait_for(client.disconnect(), 2.0)

    async def write(self, data: bytes) -> None:
        """Write one frame, split into MTU-sized writes only for text (stream) protocols."""
        client, ble = self._client, self.profile.ble
        if client is None or ble is None or not client.is_connected:
            raise LinkLost("the Bluetooth link is down.")
        limit = client.mtu_size - _ATT_OVERHEAD
        if len(data) <= limit:
            chunks = [data]
        elif self.profile.frames.encoding == "ascii":
            chunks = [data[i : i + limit] for i in range(0, len(data), limit)]
        else:
            # A binary frame is checked whole by the device; halves would be two bad frames.
            raise DeviceRejected(
                f"a {len(data)}-byte frame does not fit the MTU ({limit} bytes).",
                hint="Shorten the profile's frames or let the device negotiate a larger MTU.",
            )
        for chunk in chunks:
            try:
                await client.write_gatt_char(
                    ble.write_uuid, chunk, response=ble.write_with_response
                )
            except BleakError as exc:
                if not client.is_connected:
                    raise LinkLost(f"the Bluetooth link dropped: {exc}.") from exc
                raise DeviceRejected(
                    f"the cushion rejected a write: {exc}.",
                    hint="Check the profile's write characteristic.",
                ) from exc

    async def read(self) -> bytes:
        """Return the next notification's bytes; raise `LinkLost` once the link drops."""
        data = await self._queue.get()
        if data is None:
            raise LinkLost("the Bluetooth link dropped.")
        return data

    async def _find(self) -> BLEDevice:
        address = self.endpoint.address
        try:
            if is_address(address):
                device = await BleakScanner.find_device_by_address(
                    address, timeout=self.scan_timeout_s, **self._scanner_kwargs
                )
            else:
                device = await BleakScanner.find_device_by_name(
                    address, timeout=self.scan_timeout_s, **self._scanner_kwargs
                )
        except (BleakError, OSError) as exc:
            raise DeviceError(
                f"cannot scan for Bluetooth devices: {exc}.", hint=_hint(exc)
            ) from exc
        if device is None:
            raise DeviceError(
                f"no Bluetooth device '{address}' answered within {self.scan_timeout_s:g} s.",
                hint="Is the cushion on, in range and not connected to a phone? "
                "Try 'cushion scan'.",
            )
        return device

    def _on_notify(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        self._queue.put_nowait(bytes(data))

    def _on_disconnect(self, _client: BleakClient) -> None:
        self._queue.put_nowait(None)


def _hint(exc: BaseException) -> str:
    text = str(exc).lower()
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        # bleak reaches BlueZ over D-Bus: no socket means no Bluetooth service to talk to.
        return (
            "No Bluetooth service answered: this machine may have no adapter, or BlueZ is "
            "not running (systemctl start bluetooth). The simulator needs neither: add --sim."
        )
    if "no bluetooth adapters" in text or ("adapter" in text and "not found" in text):
        return "No Bluetooth adapter was found: plug one in or switch Bluetooth on."
    if "not ready" in text or "powered" in text:
        return "Bluetooth is off: switch it on (bluetoothctl power on)."
    if "accessdenied" in text or "permission" in text or "not permitted" in text:
        return "Permission denied: add yourself to the 'bluetooth' group, or ask your admin."
    if isinstance(exc, TimeoutError) or "not found" in text or "timeout" in text:
        return "Is the cushion on, in range and not connected to a phone? Try 'cushion scan'."
    return "Check that Bluetooth is on and the cushion is in range."

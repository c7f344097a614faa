"""Bluetooth LE transport on bleak, connecting through bleak-retry-connector.

Link discipline as Home Assistant's BLE integrations keep it (led-ble `led_ble.py`):

- Every open, the first and each reconnect, scans for a fresh `BLEDevice` and connects to
  that one: BlueZ drops a device it no longer sees, and a `BLEDevice` kept from before then
  fails with `BleakDeviceNotFoundError` however often it is retried.
- A connect lock serialises open and close (a second opener finds the link up and returns;
  close aborts a connect in progress instead of waiting for it), and a write lock keeps the
  MTU-sized pieces of one frame together: no other frame's pieces come in between.
- Failures are told apart by exception type (`classify`), never by message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bleak import BleakClient, BleakScanner
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakCharacteristicNotFoundError,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
)
from bleak_retry_connector import (
    BleakAbortedError,
    BleakConnectionError,
    BleakNotFoundError,
    BleakOutOfConnectionSlotsError,
    establish_connection,
)

from controller.errors import DeviceError, DeviceRejected, LinkLost, UsageError
from controller.transports.base import Transport

if TYPE_CHECKING:
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.device import BLEDevice

    from controller.transports.base import Endpoint
    from firmware_profiles import Profile
    from firmware_profiles.model import BleSettings

log = logging.getLogger(__name__)

_ATT_OVERHEAD = 3  # opcode + handle: what an ATT write carries besides the value
_CONNECT_ATTEMPTS = 3  # bleak-retry-connector's attempts per open (it backs off in between)
_DISCONNECT_S = 2.0  # a disconnect that hangs (D-Bus stall) is abandoned after this long
_FINISH_FRAME_S = 1.0  # how long a cancelled writer still waits for its frame's last pieces

# Errors a link can fail with besides bleak's own: D-Bus socket gone or refused
# (FileNotFoundError, ConnectionRefusedError, PermissionError are OSErrors), a D-Bus stream
# cut (EOFError, BrokenPipeError), time-outs.
_LINK_ERRORS = (BleakError, OSError, EOFError, TimeoutError)


def is_address(text: str) -> bool:
    """Tell whether `text` looks like a BLE address (AA:BB:CC:DD:EE:FF) rather than a name."""
    parts = text.split(":")
    return len(parts) == 6 and all(len(p) == 2 for p in parts)


# -- what a failure means -----------------------------------------------------------------

FailureKind = Literal[
    "no-bluetooth",  # no BlueZ / D-Bus, or no LE adapter
    "bluetooth-off",
    "permission",
    "not-found",  # not advertising, out of range, dropped by BlueZ, timed out
    "out-of-slots",
    "aborted",  # the connection was cut while being made (interference, range)
    "busy",  # another connect to the device is in progress
    "wrong-device",  # a service or characteristic the profile names is missing
    "refused",  # the device answered a GATT request with an ATT error
    "link",  # the link or the D-Bus stream broke
    "other",
]

_HINTS: dict[FailureKind, str] = {
    "no-bluetooth": (
        "No Bluetooth service answered: this machine may have no adapter, or BlueZ is not "
        "running (systemctl start bluetooth). The simulator needs neither: add --sim."
    ),
    "bluetooth-off": "Bluetooth is off: switch it on (bluetoothctl power on).",
    "permission": ("Permission denied: add yourself to the 'bluetooth' group, or ask your admin."),
    "not-found": ("Is the cushion on, in range and not connected to a phone? Try 'cushion scan'."),
    "out-of-slots": (
        "The Bluetooth adapter has no free connection: disconnect another device (a phone "
        "app, another controller) from it, or use a second adapter."
    ),
    "aborted": (
        "The connection broke while it was being made (interference or range): move the "
        "cushion closer; a USB adapter on an extension cable away from USB 3 ports helps."
    ),
    "busy": "Another connection to the cushion is being made: wait a moment and try again.",
    "wrong-device": (
        "It may be a different device (check the address with 'cushion scan') or the "
        "profile's [ble] UUIDs are wrong."
    ),
    "refused": (
        "Check the profile's write characteristic and write kind (with or without "
        "response), and whether the cushion needs pairing."
    ),
    "link": "The Bluetooth link broke: check that the cushion is on and in range.",
    "other": "Check that Bluetooth is on and the cushion is in range.",
}

# Which failures a retry (a reconnect after back-off) can cure. A missing service or a
# refused write will not change by waiting; everything about the radio or the adapter may.
_RETRY: dict[FailureKind, bool] = {k: k not in ("wrong-device", "refused") for k in _HINTS}

# D-Bus error names (BleakDBusError.dbus_error): bleak's type for what BlueZ answers.
_DBUS_KINDS: dict[str, FailureKind] = {
    "org.freedesktop.DBus.Error.ServiceUnknown": "no-bluetooth",  # bluetoothd not running
    "org.freedesktop.DBus.Error.NameHasNoOwner": "no-bluetooth",
    "org.freedesktop.DBus.Error.AccessDenied": "permission",
    "org.bluez.Error.NotAuthorized": "permission",
    "org.bluez.Error.NotReady": "bluetooth-off",
    "org.freedesktop.DBus.Error.UnknownObject": "not-found",  # BlueZ dropped the device
    "org.bluez.Error.DoesNotExist": "not-found",
    "org.bluez.Error.InProgress": "busy",
    "org.bluez.Error.NotPermitted": "refused",  # e.g. writing a characteristic not writable
}

_NOT_AVAILABLE_KINDS: dict[BleakBluetoothNotAvailableReason, FailureKind] = {
    BleakBluetoothNotAvailableReason.NO_BLUETOOTH: "no-bluetooth",
    BleakBluetoothNotAvailableReason.NO_BLE_CENTRAL_ROLE: "no-bluetooth",
    BleakBluetoothNotAvailableReason.POWERED_OFF: "bluetooth-off",
    BleakBluetoothNotAvailableReason.DENIED_BY_USER: "permission",
    BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM: "permission",
    BleakBluetoothNotAvailableReason.DENIED_BY_UNKNOWN: "permission",
}

# bleak-retry-connector's verdicts after its retries; each is raised `from` the last error.
_RETRY_CONNECTOR_KINDS: tuple[tuple[type[BleakError], FailureKind], ...] = (
    (BleakOutOfConnectionSlotsError, "out-of-slots"),
    (BleakAbortedError, "aborted"),
    (BleakNotFoundError, "not-found"),
    (BleakConnectionError, "other"),
)


@dataclass(frozen=True, slots=True)
class BleFailure:
    """What a BLE failure means: its kind, a hint for the user, whether a retry may help."""

    kind: FailureKind
    hint: str
    retry: bool


def classify(exc: BaseException) -> BleFailure:
    """Tell what `exc` (from bleak, bleak-retry-connector or the OS) means, by its type.

    bleak-retry-connector wraps the last error of its retries in a verdict of its own; when
    the wrapped error says more (no adapter, permission denied), that is what counts.
    """
    kind = _kind(exc)
    cause = exc.__cause__
    if cause is not None and isinstance(exc, tuple(t for t, _ in _RETRY_CONNECTOR_KINDS)):
        inner = _kind(cause)
        if inner not in ("other", "not-found", "link"):
            kind = inner
    return BleFailure(kind, _HINTS[kind], _RETRY[kind])


def _kind(exc: BaseException) -> FailureKind:
    # No text matching anywhere: every case below is a type (or a D-Bus error name, which is
    # data bleak carries). The one untyped bleak error we know of, BleakError("adapter 'hciN'
    # not found"), needs an adapter= option this transport never passes; any other untyped
    # BleakError gets the general hint, with its text shown in the message.
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return _NOT_AVAILABLE_KINDS.get(exc.reason, "no-bluetooth")
    for wrapper, kind in _RETRY_CONNECTOR_KINDS:
        if isinstance(exc, wrapper):
            return kind
    if isinstance(exc, BleakDeviceNotFoundError):
        return "not-found"
    if isinstance(exc, BleakCharacteristicNotFoundError):
        return "wrong-device"
    if isinstance(exc, BleakGATTProtocolError):
        return "refused"
    if isinstance(exc, BleakDBusError):
        return _DBUS_KINDS.get(exc.dbus_error, "other")
    if isinstance(exc, BleakError):
        return "other"
    if isinstance(exc, PermissionError):
        return "permission"
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        # bleak reaches BlueZ over the D-Bus system socket: no socket, no Bluetooth service.
        return "no-bluetooth"
    if isinstance(exc, TimeoutError):
        return "not-found"
    if isinstance(exc, EOFError | OSError):
        return "link"
    return "other"


class BluetoothError(DeviceError):
    """A BLE scan, connect or subscribe failed; `failure` says what it means."""

    def __init__(self, message: str, failure: BleFailure) -> None:
        self.failure = failure
        super().__init__(message, hint=failure.hint)


def _failed(message: str, exc: BaseException) -> BluetoothError:
    return BluetoothError(f"{message}: {str(exc) or type(exc).__name__}.", classify(exc))


# -- the transport --------------------------------------------------------------------------


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
        self.scans = 0  # scans this transport started: one per open
        self._client: BleakClient | None = None
        self._device: BLEDevice | None = None  # found by the latest scan
        self._connect_lock = asyncio.Lock()  # one open or close at a time
        self._write_lock = asyncio.Lock()  # one frame's chunks at a time
        self._connecting: asyncio.Task[None] | None = None
        # Notifications and link-down marks, each tagged with the link it came from, so
        # that bytes or a late disconnect from an earlier link never reach the reader.
        self._link = 0
        self._queue: asyncio.Queue[tuple[int, bytes | None]] = asyncio.Queue()

    @property
    def mtu_size(self) -> int:
        """Return the negotiated ATT MTU (23 before any exchange)."""
        return self._client.mtu_size if self._client is not None else 23

    @property
    def device(self) -> BLEDevice | None:
        """Return the `BLEDevice` found by the latest scan (None before the first open)."""
        return self._device

    async def open(self) -> None:
        """Scan afresh, connect with retries, check the service, subscribe to replies.

        A second caller waiting on the connect lock finds the link up and returns at once.
        Raises `BluetoothError` (a `DeviceError`) with a hint; `LinkLost` when `close` cut
        the connect short.
        """
        ble = self._ble()
        async with self._connect_lock:
            if self._client is not None and self._client.is_connected:
                return  # checked again under the lock, as led-ble does
            await self._disconnect()  # whatever is left of the last link
            attempt = asyncio.create_task(
                self._connect(ble), name=f"ble-connect {self.endpoint.address}"
            )
            self._connecting = attempt
            try:
                await attempt  # a cancellation of this task cancels the attempt too
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                raise LinkLost("the Bluetooth link was closed while it was being opened.") from None
            finally:
                self._connecting = None

    async def close(self) -> None:
        """Disconnect, aborting a connect in progress; never raises, bounded in time."""
        attempt = self._connecting
        if attempt is not None:
            attempt.cancel()
        async with self._connect_lock:
            await self._disconnect()

    async def _write(self, data: bytes) -> None:
        """Write one frame, split into MTU-sized writes only for text (stream) protocols.

        The write lock keeps a frame's pieces together even when frames are written from
        several tasks, and a frame once begun is finished (within `_FINISH_FRAME_S`) even if
        the writer is cancelled: half a text line would run into the next frame, often the
        all-off, and spoil both.
        """
        ble = self._ble()
        async with self._write_lock:
            client = self._client
            if client is None or not client.is_connected:
                raise LinkLost("the Bluetooth link is down.")
            chunks = self._chunks(data, client.mtu_size - _ATT_OVERHEAD)
            if len(chunks) == 1:
                await _write_chunks(client, ble, chunks)  # one ATT write: whole or not at all
                return
            whole = asyncio.ensure_future(_write_chunks(client, ble, chunks))
            try:
                await asyncio.shield(whole)
            except asyncio.CancelledError:
                # Still holding the write lock, so the next frame follows a whole one. A link
                # stalled that long is cut off rather than left writing beside the next frame.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(whole), _FINISH_FRAME_S)
                whole.cancel()
                raise

    async def read(self) -> bytes:
        """Return the next notification's bytes; raise `LinkLost` once the link drops."""
        while True:
            link, data = await self._queue.get()
            if link != self._link:
                continue  # from a link before the current one
            if data is None:
                raise LinkLost("the Bluetooth link dropped.")
            return data

    # -- inside --------------------------------------------------------------------------

    def _ble(self) -> BleSettings:
        ble = self.profile.ble
        if ble is None:
            raise UsageError(
                f"profile '{self.profile.name}' has no [ble] section.",
                key="ble",
                hint="Use a profile that describes the cushion's BLE "
                "service, or connect over --port.",
            )
        return ble

    def _chunks(self, data: bytes, limit: int) -> list[bytes]:
        if len(data) <= limit:
            return [data]
        if self.profile.frames.encoding == "ascii":
            return [data[i : i + limit] for i in range(0, len(data), limit)]
        # A binary frame is checked whole by the device; halves would be two bad frames.
        raise DeviceRejected(
            f"a {len(data)}-byte frame does not fit the MTU ({limit} bytes).",
            hint="Shorten the profile's frames or let the device negotiate a larger MTU.",
        )

    async def _connect(self, ble: BleSettings) -> None:
        """Scan, connect, check and subscribe; on success the link is `self._client`."""
        device = await self._scan()
        self._link += 1
        link, queue = self._link, self._queue

        def on_disconnect(_client: BleakClient) -> None:
            queue.put_nowait((link, None))

        def on_notify(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            queue.put_nowait((link, bytes(data)))

        try:
            # The device from this scan, not one kept from an earlier link. The callback is
            # passed as led-ble does, for retries to pick up a newer device; note that
            # bleak-retry-connector 4.x accepts it but never calls it (dead since its PR #83),
            # so the fresh scan just above is what keeps the device current.
            client = await establish_connection(
                BleakClient,
                device,
                device.name or device.address,
                disconnected_callback=on_disconnect,
                max_attempts=_CONNECT_ATTEMPTS,
                ble_device_callback=self._latest_device,
                **self._client_kwargs,
            )
        except _LINK_ERRORS as exc:
            raise _failed(f"cannot connect to {device.address}", exc) from exc
        async with contextlib.AsyncExitStack() as undo:
            undo.push_async_callback(_disconnect_quietly, client)
            service = client.services.get_service(ble.service_uuid)
            write = service.get_characteristic(ble.write_uuid) if service is not None else None
            if service is None or write is None:
                raise BluetoothError(
                    f"the device at {device.address} does not offer the service of profile "
                    f"'{self.profile.name}' ({ble.service_uuid}).",
                    BleFailure("wrong-device", _HINTS["wrong-device"], retry=False),
                )
            if ble.notify_uuid is not None:
                try:
                    await client.start_notify(ble.notify_uuid, on_notify)
                except _LINK_ERRORS as exc:
                    if not client.is_connected:
                        raise _failed("the Bluetooth link dropped while subscribing", exc) from exc
                    raise _failed("the cushion refused notifications", exc) from exc
            undo.pop_all()  # connected and subscribed: keep the link
        self._client = client
        log.debug("connected to %s (MTU %d)", device.address, client.mtu_size)

    def _latest_device(self) -> BLEDevice:
        assert self._device is not None  # set by the scan that precedes every connect
        return self._device

    async def _scan(self) -> BLEDevice:
        address = self.endpoint.address
        self.scans += 1
        try:
            if is_address(address):
                device = await BleakScanner.find_device_by_address(
                    address, timeout=self.scan_timeout_s, **self._scanner_kwargs
                )
            else:
                device = await BleakScanner.find_device_by_name(
                    address, timeout=self.scan_timeout_s, **self._scanner_kwargs
                )
        except _LINK_ERRORS as exc:
            raise _failed("cannot scan for Bluetooth devices", exc) from exc
        if device is None:
            raise BluetoothError(
                f"no Bluetooth device '{address}' answered within {self.scan_timeout_s:g} s.",
                BleFailure("not-found", _HINTS["not-found"], retry=True),
            )
        self._device = device
        return device

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _disconnect_quietly(client)


async def _write_chunks(client: BleakClient, ble: BleSettings, chunks: list[bytes]) -> None:
    """Write `chunks` in order; `LinkLost` if the link drops, `DeviceRejected` if refused."""
    for chunk in chunks:
        try:
            await client.write_gatt_char(ble.write_uuid, chunk, response=ble.write_with_response)
        except _LINK_ERRORS as exc:
            failure = classify(exc)
            if not client.is_connected or failure.kind == "link":
                raise LinkLost(f"the Bluetooth link dropped: {exc}.") from exc
            raise DeviceRejected(
                f"the cushion rejected a write: {exc}.", hint=failure.hint
            ) from exc


async def _disconnect_quietly(client: BleakClient) -> None:
    """Disconnect `client`, giving up after `_DISCONNECT_S`; never raises (but cancellation)."""
    with contextlib.suppress(*_LINK_ERRORS):
        await asyncio.wait_for(client.disconnect(), _DISCONNECT_S)


__all__ = ["BleFailure", "BleTransport", "BluetoothError", "FailureKind", "classify", "is_address"]

"""A simulated cushion as a BLE peripheral: the profile's GATT service on a bumble `Device`."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from bumble import att, gatt

from hil.ble.advert import build_advertising_data

if TYPE_CHECKING:
    from bumble.device import Device

    from firmware_profiles.model import BleSettings
    from hil.cushion import SimulatedCushion

log = logging.getLogger(__name__)

_Props = gatt.Characteristic.Properties


class SimBlePeripheral:
    """One simulated cushion on the virtual radio: advertises, takes one central at a time.

    Writes to the profile's write characteristic feed ``cushion.feed``; the cushion's replies
    go out as notifications on the notify characteristic (the write characteristic when the
    profile names none), split into ``ATT_MTU - 3`` byte pieces as a UART bridge chip does.
    Built by `SimBleWorld.add_cushion`.
    """

    def __init__(
        self,
        cushion: SimulatedCushion,
        device: Device,
        settings: BleSettings,
        *,
        name: str,
        advertising_interval_ms: float,
    ) -> None:
        self.cushion = cushion
        self.device = device
        self.settings = settings
        self.name = name
        self.address: str = device.random_address.to_string(False)
        self.advertising_interval_ms = advertising_interval_ms
        self.advertising_data = build_advertising_data(
            name, settings.service_uuid, manufacturer_id=settings.manufacturer_id
        )
        self.connection: Any = None  # the bumble Connection of the central, if any
        # Each ATT write's value as it arrived (the newest 4,096): one entry per MTU chunk.
        self.received: collections.deque[bytes] = collections.deque(maxlen=4096)
        self._want_advertising = False
        self._restart: asyncio.Task[None] | None = None
        self._hang_up_task: asyncio.Task[None] | None = None
        self._advertising_lock = asyncio.Lock()  # bumble's set bookkeeping is not reentrant
        self.write_characteristic, self.notify_characteristic = self._characteristics()
        chars = [self.write_characteristic]
        if self.notify_characteristic is not self.write_characteristic:
            chars.append(self.notify_characteristic)
        device.add_service(gatt.Service(settings.service_uuid, chars))
        device.on("connection", self._on_connection)
        cushion.on_transmit = self._transmit
        cushion.attach(self)  # so the cushion's hang_up (a fault schedule's) drops this link

    def __repr__(self) -> str:
        return f"SimBlePeripheral({self.name!r}, {self.address})"

    @property
    def connected(self) -> bool:
        """Return True while a central is connected."""
        return self.connection is not None

    @property
    def subscribed(self) -> bool:
        """Return True while the connected central has notifications on."""
        return self._cccd_on()

    async def start_advertising(self) -> None:
        """Advertise (name, service UUID, manufacturer data) until a central connects."""
        self._want_advertising = True
        async with self._advertising_lock:
            if self.connection is not None:
                return
            await self.device.start_advertising(
                advertising_data=self.advertising_data,
                scan_response_data=b"",
                advertising_interval_min=self.advertising_interval_ms,
                advertising_interval_max=self.advertising_interval_ms,
            )

    async def stop_advertising(self) -> None:
        """Stop advertising (and do not resume after the next disconnection)."""
        self._want_advertising = False
        async with self._advertising_lock:
            await self.device.stop_advertising()

    async def disconnect(self) -> None:
        """Drop the link from the device side (out of range, power loss); no-op if idle."""
        connection = self.connection
        if connection is not None:
            await connection.disconnect()

    def hang_up(self, down_s: float | None = None) -> None:
        """Drop the link from the device side, as `SimulatedCushion.hang_up` asks its links.

        ``down_s``: stay out of reach (not advertising) this long, then advertise again;
        None or 0: advertise again at once, as a cushion does after a dropped link. Called
        from a fault schedule, outside any coroutine: the work runs as a task on the loop.
        """
        previous = self._hang_up_task
        if previous is not None:
            previous.cancel()
        self._hang_up_task = asyncio.get_running_loop().create_task(self._hang_up(down_s))

    async def _hang_up(self, down_s: float | None) -> None:
        try:
            if not down_s:
                await self.disconnect()  # re-advertises by itself if it was advertising
                return
            wanted = self._want_advertising
            await self.stop_advertising()  # first, so the drop does not re-advertise
            await self.disconnect()
            await asyncio.sleep(down_s)
            if wanted:
                await self.start_advertising()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulated cushion %s could not hang up", self.name)

    async def close(self) -> None:
        """Stop advertising, drop any link and detach from the cushion."""
        self._want_advertising = False
        for task in (self._restart, self._hang_up_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._restart = self._hang_up_task = None
        await self.disconnect()
        await self.stop_advertising()
        self.cushion.detach(self)
        if self.cushion.on_transmit == self._transmit:
            self.cushion.on_transmit = None

    def _characteristics(self) -> tuple[gatt.Characteristic[bytes], gatt.Characteristic[bytes]]:
        settings = self.settings
        write_props = (
            _Props.WRITE if settings.write_with_response else _Props.WRITE_WITHOUT_RESPONSE
        )
        shared = settings.notify_uuid is None or _same_uuid(
            settings.notify_uuid, settings.write_uuid
        )
        if shared:
            write_props |= _Props.NOTIFY
        write: gatt.Characteristic[bytes] = gatt.Characteristic(
            settings.write_uuid,
            write_props,
            gatt.Characteristic.Permissions.WRITEABLE,
            gatt.CharacteristicValue[bytes](write=self._on_write),
        )
        if shared:
            return write, write
        assert settings.notify_uuid is not None
        notify: gatt.Characteristic[bytes] = gatt.Characteristic(
            settings.notify_uuid,
            _Props.NOTIFY,
            gatt.Characteristic.Permissions.READABLE,
            gatt.CharacteristicValue[bytes](read=lambda _connection: b"", write=_refuse_write),
        )
        return write, notify

    def _on_write(self, connection: Any, value: bytes) -> None:
        # Called from inside bumble's packet handling: an exception here would escape into
        # bumble (pitfall 3), so it stops at this boundary.
        self.received.append(bytes(value))
        try:
            self.cushion.feed(bytes(value))
        except Exception:
            log.exception("simulated cushion %s failed on %r", self.name, bytes(value))

    def _transmit(self, data: bytes) -> None:
        connection = self.connection
        if connection is None or not self._cccd_on():
            return  # nobody listens: a real chip drops the bytes too
        try:
            handle = self.notify_characteristic.handle
            size = connection.att_mtu - 3
            server = self.device.gatt_server
            for start in range(0, len(data), size):
                pdu = att.ATT_Handle_Value_Notification(
                    attribute_handle=handle, attribute_value=data[start : start + size]
                )
                server.send_gatt_pdu(connection, bytes(pdu))
        except Exception:
            log.exception("simulated cushion %s could not notify %r", self.name, data)

    def _cccd_on(self) -> bool:
        connection = self.connection
        if connection is None:
            return False
        cccds = self.device.gatt_server.subscribers.get(connection) or {}
        cccd: bytes | None = cccds.get(self.notify_characteristic.handle)
        return cccd is not None and len(cccd) == 2 and bool(cccd[0] & 0x01)

    def _on_connection(self, connection: Any) -> None:
        self.connection = connection
        self.cushion.recorder.add(self.cushion.firmware.now(), "link", "connected")
        connection.on("disconnection", lambda reason: self._on_disconnection(connection))

    def _on_disconnection(self, connection: Any) -> None:
        if self.connection is not connection:
            return
        self.connection = None
        self.cushion.recorder.add(self.cushion.firmware.now(), "link", "disconnected")
        if self._want_advertising:
            # A real cushion advertises again as soon as the link is gone.
            self._restart = asyncio.get_running_loop().create_task(self._readvertise())

    async def _readvertise(self) -> None:
        try:
            await self.start_advertising()
        except Exception:
            log.exception("simulated cushion %s could not advertise again", self.name)


def _refuse_write(_connection: Any, _value: bytes) -> None:
    # bumble's server does not check a characteristic's write permission; a real GATT server
    # answers a write to a notify-only characteristic with this ATT error.
    raise att.ATT_Error(att.ATT_WRITE_NOT_PERMITTED_ERROR)


def _same_uuid(a: str, b: str) -> bool:
    return a.replace("-", "").lower() == b.replace("-", "").lower()

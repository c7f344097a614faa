"""Serial transport on pyserial through pyserial-asyncio-fast (no reader thread of our own)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
from typing import TYPE_CHECKING, Any

import serial
import serial_asyncio_fast

from controller.errors import DeviceError, LinkLost
from controller.transports.base import Transport

if TYPE_CHECKING:
    from controller.transports.base import Endpoint
    from firmware_profiles import Profile

_PARITY = {"none": serial.PARITY_NONE, "even": serial.PARITY_EVEN, "odd": serial.PARITY_ODD}


class SerialTransport(Transport):
    """A cushion on a serial port (USB adapter, UART, or the simulator's pseudo-terminal)."""

    name = "serial"

    def __init__(self, endpoint: Endpoint, profile: Profile) -> None:
        super().__init__(endpoint, profile)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """Open the port with the profile's link settings (overridable with `?baud=`)."""
        link = self.profile.serial
        baud = int(self.endpoint.options.get("baud", link.baudrate if link else 9600))
        kwargs: dict[str, Any] = {"baudrate": baud}
        if link is not None:
            kwargs.update(
                bytesize=link.bytesize,
                parity=_PARITY.get(link.parity, serial.PARITY_NONE),
                stopbits=link.stopbits,
            )
        try:
            self._reader, self._writer = await serial_asyncio_fast.open_serial_connection(
                url=self.endpoint.address, **kwargs
            )
        except serial.SerialException as exc:
            raise DeviceError(
                f"cannot open serial port {self.endpoint.address}: {exc}.", hint=_hint(exc)
            ) from exc

    async def close(self) -> None:
        """Close the port."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError, serial.SerialException):
                await asyncio.wait_for(writer.wait_closed(), 0.5)

    async def write(self, data: bytes) -> None:
        """Write a frame and drain (a gone device is only noticed by drain)."""
        if self._writer is None:
            raise LinkLost("the serial port is closed.")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (OSError, serial.SerialException) as exc:
            raise LinkLost(f"serial port {self.endpoint.address} went away: {exc}.") from exc

    async def read(self) -> bytes:
        """Return the next bytes the cushion sent."""
        if self._reader is None:
            raise LinkLost("the serial port is closed.")
        try:
            data = await self._reader.read(4096)
        except (OSError, serial.SerialException) as exc:
            raise LinkLost(f"serial port {self.endpoint.address} went away: {exc}.") from exc
        if not data:
            raise LinkLost(f"serial port {self.endpoint.address} closed.")
        return data


def _hint(exc: serial.SerialException) -> str:
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT:
        return "Check the cable and the port name (ls /dev/ttyUSB* /dev/ttyACM*)."
    if code in (errno.EACCES, errno.EPERM):
        return "Add yourself to the 'dialout' group or fix the port's permissions."
    if code == errno.EBUSY:
        return "Another program holds the port; close it first."
    return "Check the port name, the cable and that the cushion is powered."

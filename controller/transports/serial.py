"""Serial transport on pyserial through pyserial-asyncio-fast (no reader thread of our own)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
from typing import TYPE_CHECKING, Any

import serial
import serial_asyncio_fast

from controller.errors import DeviceError, LinkLost, UsageError
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
        link = profile.serial
        self.baudrate = _baud(endpoint, link.baudrate if link else 9600)

    async def open(self) -> None:
        """Open the port, locked against other programs, with the profile's link settings."""
        link = self.profile.serial
        # exclusive: pyserial takes flock(LOCK_EX | LOCK_NB) before touching the port, so a
        # second `cushion run` on it fails here, before its opening all-off can cut the
        # first run's outputs (and that run's next lease renewal raise them again at once).
        kwargs: dict[str, Any] = {"baudrate": self.baudrate, "exclusive": True}
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

    async def _write(self, data: bytes) -> None:
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


def _baud(endpoint: Endpoint, default: int) -> int:
    """Return the baud rate: the endpoint's `?baud=` option, else the profile's."""
    text = endpoint.options.get("baud")
    if text is None:
        return default
    try:
        baud = int(text)
    except ValueError:
        baud = 0
    if not 0 < baud <= 12_000_000:
        raise UsageError(
            f"'baud={text}' in port '{endpoint}' is not a baud rate.",
            key="baud",
            hint="Give a whole number such as 9600 or 115200, or leave it out to use the "
            "profile's.",
        )
    return baud


def _hint(exc: serial.SerialException) -> str:
    code = getattr(exc, "errno", None)
    if code in (errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively lock" in str(exc):
        return (
            "Another program holds this port (another 'cushion run' or a terminal "
            "program): close it first. Two controllers on one cushion would fight."
        )
    if code == errno.ENOENT:
        return "Check the cable and the port name (ls /dev/ttyUSB* /dev/ttyACM*)."
    if code in (errno.EACCES, errno.EPERM):
        return "Add yourself to the 'dialout' group or fix the port's permissions."
    if code == errno.EBUSY:
        return "Another program holds the port; close it first."
    return "Check the port name, the cable and that the cushion is powered."

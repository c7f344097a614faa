"""A real pseudo-terminal in front of a `SimulatedCushion`: the controller opens ``link.port``
with pyserial exactly like ``/dev/ttyUSB0``.

Pitfalls handled (HIL-NOTES.md, PTY section): both ends are set raw at once; our own copy of
the slave fd is closed so a controller hang-up shows as EIO; on EIO the reader is removed at
once (the callback would keep firing) and the master is polled until a controller opens the
port again, so a controller may close and reopen it like a real USB adapter. Bytes written
before the controller opens the port are discarded by the pty, so replies are dropped while
nobody is connected.

The cushion may hang up from its side (`SimulatedCushion.hang_up`, e.g. a ``hang_up`` fault):
the pty closes, so the controller's read fails as with a pulled USB adapter; with a down time
a fresh pty opens after it, on a new path (``port`` and ``on_reopen(port)`` tell which).
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import tty
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from hil.cushion import SimulatedCushion

_READ_SIZE = 4096


class PtyLink:
    """Serve a `SimulatedCushion` on a fresh pty; use as ``async with PtyLink(c) as link``."""

    def __init__(
        self,
        cushion: SimulatedCushion,
        *,
        baudrate: int | None = None,
        poll_s: float = 0.02,
        on_reopen: Callable[[str], object] | None = None,
    ) -> None:
        self.cushion = cushion
        self.on_reopen = on_reopen  # told the new port after a hang-up's down time
        self.baudrate = baudrate  # if set, replies leave no faster than the wire allows
        self.poll_s = poll_s  # how often to look for a controller while none is connected
        self.port = ""
        self.connected = False  # a controller has the port open
        self._master: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._out = bytearray()
        self._writing = False
        self._poll: asyncio.TimerHandle | None = None
        self._tx_free_at = 0.0
        self._reopen: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> PtyLink:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
            self._reopen = None
        self.disconnect()

    def open(self) -> str:
        """Create the pty, start serving the cushion and return the port path (e.g. /dev/pts/7)."""
        if self._master is not None:
            return self.port
        self._loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        try:
            tty.setraw(master)
            tty.setraw(slave)
            self.port = os.ttyname(slave)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self._master = master
        self.cushion.on_transmit = self._transmit
        self.cushion.attach(self)
        self._look_for_peer()
        return self.port

    def hang_up(self, down_s: float | None = None) -> None:
        """Close the pty from the device side; open a fresh one ``down_s`` later (None: never)."""
        loop = self._loop
        self.disconnect()
        if down_s is None or loop is None:
            return
        if self._reopen is not None:
            self._reopen.cancel()
        self._reopen = loop.call_later(down_s, self._open_again)

    def _open_again(self) -> None:
        self._reopen = None
        port = self.open()
        if self.on_reopen is not None:
            self.on_reopen(port)

    def disconnect(self) -> None:
        """Close the device side: the controller's next read fails, as with a pulled cable."""
        if self._master is None or self._loop is None:
            return
        master, self._master = self._master, None
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None
        self._loop.remove_reader(master)
        self._loop.remove_writer(master)
        os.close(master)
        self._out.clear()
        self.connected = False
        self.cushion.detach(self)
        if self.cushion.on_transmit == self._transmit:
            self.cushion.on_transmit = None
        self.cushion.recorder.add(self._loop.time(), "link", "disconnected")

    # -- the controller comes and goes ----------------------------------------------------

    def _look_for_peer(self) -> None:
        self._poll = None
        if self._master is None or self._loop is None:
            return
        poller = select.poll()
        poller.register(self._master, select.POLLIN)
        hung_up = any(ev & select.POLLHUP for _, ev in poller.poll(0))
        if hung_up:
            self._poll = self._loop.call_later(self.poll_s, self._look_for_peer)
            return
        self.connected = True
        self.cushion.recorder.add(self._loop.time(), "link", "connected")
        self._loop.add_reader(self._master, self._readable)

    def _hang_up(self) -> None:
        assert self._master is not None and self._loop is not None
        # The reader would fire forever on a hung-up pty: remove it on the first failure.
        self._loop.remove_reader(self._master)
        self._loop.remove_writer(self._master)
        self._writing = False
        self._out.clear()
        self.connected = False
        self.cushion.recorder.add(self._loop.time(), "link", "hangup")
        self._poll = self._loop.call_later(self.poll_s, self._look_for_peer)

    def _readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as err:
            if err.errno != errno.EIO:
                raise
            self._hang_up()
            return
        if not data:
            self._hang_up()
            return
        self.cushion.feed(data)

    # -- replies ---------------------------------------------------------------------------

    def _transmit(self, data: bytes) -> None:
        if not self.connected or self._loop is None:
            return  # nobody listening: a pty would discard these bytes on open anyway
        if self.baudrate:
            # 10 bit times per byte (8N1): replies queue behind each other on the wire.
            now = self._loop.time()
            self._tx_free_at = max(now, self._tx_free_at) + len(data) * 10 / self.baudrate
            self._loop.call_at(self._tx_free_at, self._send, data)
        else:
            self._send(data)

    def _send(self, data: bytes) -> None:
        if not self.connected or self._master is None or self._loop is None:
            return
        self._out += data
        if not self._writing:
            self._flush()

    def _flush(self) -> None:
        if self._master is None or self._loop is None:
            return
        try:
            sent = os.write(self._master, self._out) if self._out else 0
        except BlockingIOError:
            sent = 0
        except OSError:
            self._out.clear()  # controller gone; the reader notices the hang-up
            sent = 0
        del self._out[:sent]
        if self._out and not self._writing:
            self._writing = True
            self._loop.add_writer(self._master, self._flush)
        elif not self._out and self._writing:
            self._writing = False
            self._loop.remove_writer(self._master)

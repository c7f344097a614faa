"""The link to one cushion: the only holder of the transport's write, with its locks."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from controller.backoff import backoff_delay
from controller.errors import DeviceError, LinkLost

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from controller.transports.base import Transport

log = logging.getLogger(__name__)


class Link:
    """Opens, closes and reconnects one transport; frames go out whole, one at a time."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.up = asyncio.Event()
        self.closed = False
        self.losses = 0  # how many times the link went down: tells a stale wait from a fault
        self._connect_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        """Open the transport (raises `DeviceError`); the link is up afterwards."""
        async with self._connect_lock:
            self.closed = False
            await self.transport.open()
            self.up.set()

    async def close(self) -> None:
        """Close the transport for good; never raises."""
        self.closed = True
        self.up.clear()
        try:
            await self.transport.close()
        except Exception:  # a transport's close must not stop the rest of the shutdown
            log.exception("closing %s failed", self.transport.name)

    async def write(self, frame: bytes) -> None:
        """Write one frame whole (no other frame's bytes in between); `LinkLost` if down."""
        # acquire/release rather than `async with`: one coroutine less on every frame.
        lock = self._write_lock
        await lock.acquire()
        try:
            await self.transport._write(frame)
        finally:
            lock.release()

    def read(self) -> Awaitable[bytes]:
        """Return the next bytes from the cushion; `LinkLost` when the link ends."""
        return self.transport.read()  # the transport's own awaitable: no coroutine in between

    def hand_replies_to(self, receiver: Callable[[bytes], None]) -> bool:
        """Offer replies to ``receiver`` while a `read` waits, if the transport can (see there)."""
        return self.transport.hand_replies_to(receiver)

    def lost(self) -> bool:
        """Mark the link down; return False if it already was."""
        if not self.up.is_set():
            return False
        self.up.clear()
        self.losses += 1
        return True

    async def reconnect(self, on_failure: Callable[[int, DeviceError], None]) -> None:
        """Reopen the transport until it works (or the link is closed), with backoff."""
        attempt = 0
        async with self._connect_lock:
            while not self.up.is_set() and not self.closed:
                await self.transport.close()
                try:
                    await self.transport.open()
                except DeviceError as exc:
                    if self.closed:
                        break  # close() cut the connect short: not a failure to report
                    failure = getattr(exc, "failure", None)
                    if failure is not None and not failure.retry:
                        raise  # waiting will not fix it (a wrong device, a refused write)
                    attempt += 1
                    on_failure(attempt, exc)
                    await asyncio.sleep(backoff_delay(attempt))
                    continue
                self.up.set()
        if self.closed:
            raise LinkLost("the link was closed while reconnecting.")

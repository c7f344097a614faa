"""In-process link: the controller side gets ``write``/``read`` coroutines, no pty needed."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from hil.cushion import SimulatedCushion


_NEVER = float("-inf")


class InProcessLink:
    """A wire between a controller and a `SimulatedCushion` inside one event loop.

    Writes reach the cushion at once (a wire without delay); replies reach the controller's
    ``read`` (or a receiver, see `hand_to`) on a later loop turn. `hang_up` (the cushion's, e.g.
    from a fault schedule) closes it from the device side; while the cushion stays out of reach
    after that, a link opened to it carries nothing either way (as a radio link to a device
    out of range: no error, just silence), so a reconnecting controller meets its reply
    time-out.
    """

    def __init__(self, cushion: SimulatedCushion) -> None:
        self.cushion = cushion
        self._chunks: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed: str | None = None  # why the link is closed, once it is
        self._receiver: Callable[[bytes], None] | None = None
        self._handing: asyncio.Handle | None = None  # a hand-over to the receiver, scheduled
        cushion.on_transmit = self._from_device
        cushion.attach(self)
        cushion.recorder.add(cushion.firmware.now(), "link", "connected")

    @property
    def closed(self) -> bool:
        """Return True once either side closed the link."""
        return self._closed is not None

    async def write(self, data: bytes) -> None:
        """Send bytes towards the cushion; raise `ConnectionError` once the link is closed."""
        self.send(data)

    def send(self, data: bytes) -> None:
        """`write` without the coroutine: the cushion takes the bytes before this returns."""
        if self._closed is not None:
            raise ConnectionError(self._closed)
        # A wire with no delay: the cushion takes the bytes now, in order; its replies reach
        # the controller's reader on a later loop turn. Saves a loop turn per frame.
        self._deliver(data if type(data) is bytes else bytes(data))

    def hand_to(self, receiver: Callable[[bytes], None] | None) -> None:
        """Hand replies to ``receiver`` by a callback while a reader waits in `read`.

        The callback runs where that reader's wake-up would have run (the next loop turn, in
        the same place among the other callbacks), without the task switch; the waiting `read`
        then returns only when the link closes (ConnectionError), or raises what ``receiver``
        raised, after which replies stay for `read` again. Bytes that come while no reader
        waits stay for `read` too. None: back to `read` alone.
        """
        self._receiver = receiver

    async def read(self) -> bytes:
        """Return the reply bytes received so far (waits for some); ConnectionError once closed."""
        while not self._chunks:
            if self._closed is not None:
                raise ConnectionError(self._closed)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._closed is not None:
            raise ConnectionError(self._closed)
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data

    def close(self) -> None:
        """Close from the controller side."""
        self._shut("link closed by the controller")

    def disconnect(self) -> None:
        """Simulate link loss from the device side (cable pulled, device out of range)."""
        if self._closed is None:
            self.cushion.recorder.add(self.cushion.firmware.now(), "link", "disconnected")
        self._shut("device disconnected")

    def hang_up(self, down_s: float | None = None) -> None:
        """Close from the device side; the cushion stays out of reach for ``down_s`` (s)."""
        if down_s:
            cushion = self.cushion
            until = cushion.firmware.now() + down_s
            cushion.unreachable_until = max(cushion.unreachable_until, until)
        self.disconnect()

    def _shut(self, reason: str) -> None:
        if self._closed is not None:
            return
        self._closed = reason
        if self._handing is not None:
            self._handing.cancel()  # bytes not yet handed over are lost, as `read` drops them
            self._handing = None
        self.cushion.detach(self)
        if self.cushion.on_transmit == self._from_device:
            self.cushion.on_transmit = None
        self._wake()

    def _deliver(self, data: bytes) -> None:
        if self._closed is None:
            cushion = self.cushion
            if cushion.unreachable_until > _NEVER and (
                cushion.firmware.now() < cushion.unreachable_until
            ):
                return  # out of reach: the bytes are lost
            cushion.feed(data)

    def _from_device(self, data: bytes) -> None:
        if self._closed is None:
            self._chunks.append(data)
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._receiver is None or self._closed is not None:
            waiter.set_result(None)
        elif self._handing is None:
            self._handing = waiter.get_loop().call_soon(self._hand_over)

    def _hand_over(self) -> None:
        self._handing = None
        receiver, waiter = self._receiver, self._waiter
        if receiver is None or waiter is None or waiter.done():
            self._wake()  # the receiver was withdrawn meanwhile: the reader reads them
            return
        data = b"".join(self._chunks)
        self._chunks.clear()
        try:
            receiver(data)
        except Exception as exc:  # the reader's own loop would have raised it: it does now
            self._receiver = None
            waiter.set_exception(exc)


# The pty link lives in its own module; re-exported so both links import from one place.
from hil.ptylink import PtyLink  # noqa: E402

__all__ = ["InProcessLink", "PtyLink"]

"""In-process transport to a simulated cushion (virtual-time runs; no pty, no threads)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.errors import DeviceError, LinkLost
from controller.transports.base import Transport

if TYPE_CHECKING:
    from collections.abc import Callable

    from controller.transports.base import Endpoint
    from firmware_profiles import Profile
    from hil.cushion import SimulatedCushion
    from hil.links import InProcessLink


class SimTransport(Transport):
    """Talks bytes to a `hil` simulated cushion living in the same event loop."""

    name = "sim"

    def __init__(
        self, endpoint: Endpoint, profile: Profile, cushion: SimulatedCushion | None = None
    ) -> None:
        super().__init__(endpoint, profile)
        from hil.cushion import SimulatedCushion

        self.cushion = cushion or SimulatedCushion(profile)
        self.in_range = True  # tests switch this off to keep a reconnect from succeeding
        self._link: InProcessLink | None = None
        self._receiver: Callable[[bytes], None] | None = None

    @property
    def link(self) -> InProcessLink | None:
        """Return the simulated cable, so tests can pull it."""
        return self._link

    async def open(self) -> None:
        """Attach to the simulated cushion."""
        from hil.links import InProcessLink

        if not self.in_range:
            raise DeviceError("the simulated cushion is out of range.")
        self._link = InProcessLink(self.cushion)
        self._link.hand_to(self._receiver)

    async def close(self) -> None:
        """Detach from the simulated cushion."""
        if self._link is not None:
            self._link.close()
            self._link = None

    async def _write(self, data: bytes) -> None:
        """Deliver one frame to the simulated cushion."""
        if self._link is None:
            raise LinkLost("the simulated link is closed.")
        try:
            self._link.send(data)  # the link's write, minus a coroutine per frame
        except ConnectionError as exc:
            raise LinkLost(f"the simulated link dropped: {exc}.") from exc

    def hand_replies_to(self, receiver: Callable[[bytes], None]) -> bool:
        """Have replies handed to ``receiver`` on this link and every one opened later."""
        # Saves the reader task's wake-up per reply (a virtual run has one per frame).
        self._receiver = receiver
        if self._link is not None:
            self._link.hand_to(receiver)
        return True

    async def read(self) -> bytes:
        """Return the next bytes the simulated cushion sent."""
        if self._link is None:
            raise LinkLost("the simulated link is closed.")
        try:
            return await self._link.read()
        except ConnectionError as exc:
            raise LinkLost(f"the simulated link dropped: {exc}.") from exc

"""Walking a button-style (stepping) cushion to a target, one confirmed press at a time."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from controller.clock import sleep_until
from controller.errors import DeviceRejected, DeviceTimeout
from firmware_profiles.commands import Press, Query

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from controller.replies import ReplyBook
    from firmware_profiles import Profile
    from firmware_profiles.commands import Button, Command

PRESS_RETRIES = 2


class SteppingWriter:
    """Presses buttons until the cushion's level and mode are where the facade wants them."""

    def __init__(
        self,
        profile: Profile,
        replies: ReplyBook,
        send: Callable[[Command], Awaitable[bool]],
        halted: Callable[[], bool],
    ) -> None:
        self.profile = profile
        self.replies = replies
        self.send = send
        self.halted = halted
        self.min_interval = 1.0 / profile.limits.max_update_hz
        self.modes = len(profile.modes)
        self._last_press_t = float("-inf")
        self._has_query = profile.supports("query")

    async def walk(
        self, mode: int | None, known_level: int, want: Callable[[], int]
    ) -> tuple[int, int]:
        """Press until level == `want()` and the mode is `mode`; return (level, mode or -1)."""
        if self.replies.status is None and self._has_query:
            await self.query()
        if mode is not None and self.profile.supports("press.next_mode"):
            for _ in range(self.modes + 1):
                if self.replies.known("mode", -1) == mode or self.halted():
                    break
                await self.press("next_mode", "mode")
        level = self.replies.known("level", known_level)
        while not self.halted():
            level = self.replies.known("level", level)
            target = want()
            if level == target:
                break
            button: Button = "intensity_up" if target > level else "intensity_down"
            await self.press(button, "level")
            if not self._has_query:
                # Tracked blind: nothing reports the level, so count the presses.
                level += 1 if button == "intensity_up" else -1
                self.replies.status = {**(self.replies.status or {}), "level": level}
        return self.replies.known("level", level), self.replies.known(
            "mode", -1 if mode is None else mode
        )

    async def press(self, button: Button, field: str) -> None:
        """Press once; with status replies, confirm it took before any further press."""
        before = self.replies.known(field, -1)
        loop = asyncio.get_running_loop()
        for _attempt in range(PRESS_RETRIES + 1):
            # Presses are rate-limited like updates: a remote-style device drops fast repeats.
            await sleep_until(self._last_press_t + self.min_interval)
            if self.halted():
                return
            self._last_press_t = loop.time()
            await self.send(Press(button))
            if not self._has_query:
                return
            if not await self.query():
                return  # the link went down: the reconnect starts from a fresh status
            if self.replies.known(field, -1) != before:
                return
            # The status proves the press was lost, so pressing again is not a blind repeat.
        raise DeviceRejected(
            f"the cushion ignored the '{button}' button {PRESS_RETRIES + 1} times.",
            hint="Check that the profile's button frames match this remote.",
        )

    async def query(self) -> bool:
        """Ask for a status and wait for it (`DeviceTimeout` if none comes in time).

        Returns False at once when the question could not be written (the link is down):
        a status that was never asked for is no cushion's silence.
        """
        replies = self.replies
        replies.status_event.clear()
        if not await self.send(Query()):
            return False
        try:
            await asyncio.wait_for(replies.status_event.wait(), replies.reply_timeout_s)
        except TimeoutError as exc:
            raise DeviceTimeout(
                "the cushion did not answer a status request within "
                f"{replies.reply_timeout_s:g} s.",
                hint="Check the link and that the profile's status reply matches the device.",
            ) from exc
        return True

"""Watching one cushion: acks owed, keepalives, and status polls in quiet steady state."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from firmware_profiles.commands import Keepalive, Query

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine
    from typing import Any

    from controller.link import Link
    from controller.replies import ReplyBook
    from firmware_profiles import Profile
    from firmware_profiles.commands import Command

# Ask for a status every two reply time-outs, so a silent, garbling or restarted cushion is
# noticed. A cushion that acks every command already shows silence within one time-out;
# there the poll looks only for a restart, at most once a second.
POLL_EVERY_TIMEOUTS = 2.0
ACKED_POLL_S = 1.0


class Watch:
    """Keeps one cushion alive and in view; a timer re-checks deadlines, the loop acts."""

    def __init__(
        self,
        profile: Profile,
        replies: ReplyBook,
        link: Link,
        send: Callable[[Command], Awaitable[bool]],
        poll: Callable[[], Coroutine[Any, Any, None]],
        writing: Callable[[], bool],
        final: Callable[[], bool],
    ) -> None:
        self.replies = replies
        self.link = link
        self.send = send
        self.poll = poll
        self.writing = writing
        self.final = final
        self.keepalive_s = profile.limits.keepalive_s
        self.polls = profile.supports("query") and profile.supports("status")
        self.acks = bool(profile.limits.ack_every_command)
        self.keepalive: Command = Keepalive() if profile.supports("keepalive") else Query()
        self.last_frame_t = float("-inf")  # the device's _send stamps every frame
        self.retry_s = 1.0 / profile.limits.max_update_hz  # a poll put off by an update
        self._next_poll = 0.0
        self._due = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # bound by `run`, for `_tick`

    def cancel(self) -> None:
        """Stop re-checking (the loop itself is cancelled by its owner)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def run(self) -> None:
        """Send keepalives and polls when due; raise `DeviceTimeout` for an overdue ack."""
        loop = self._loop = asyncio.get_running_loop()
        replies = self.replies
        poll_s = POLL_EVERY_TIMEOUTS * replies.reply_timeout_s
        if self.acks:
            poll_s = max(poll_s, ACKED_POLL_S)
        self._next_poll = loop.time()
        while True:
            if not self.link.up.is_set():
                await self.link.up.wait()
                self._next_poll = loop.time()
            self._tick()
            await self._due.wait()
            self._due.clear()
            now = loop.time()
            replies.overdue(now)
            ka = self.keepalive_s
            if (
                ka
                and not self.final()
                and now >= self.last_frame_t + ka
                and not await self.send(self.keepalive)
            ):
                self.last_frame_t = now  # nothing to write to: try again one period on
            if self.polls and not self.final() and now >= self._next_poll:
                if self.writing():
                    # An update is on its way: its own frames prove the link; look again soon.
                    self._next_poll = now + self.retry_s
                else:
                    await self.poll()
                    self._next_poll = loop.time() + poll_s

    def _tick(self) -> None:
        """Timer callback: wake the loop only when something is due, else re-arm.

        A plain callback instead of a task wake-up per deadline: deadlines move on with
        every frame sent, and re-checking them costs a fraction of a loop turn this way.
        """
        self._timer = None
        loop = self._loop or asyncio.get_running_loop()
        now = loop.time()
        due = now + 1.0  # the earliest of the deadlines below, without building a list
        pending = self.replies.pending
        if pending:
            due = min(due, pending[0] + self.replies.reply_timeout_s)
        final = self.final()
        if self.keepalive_s and not final:
            due = min(due, self.last_frame_t + self.keepalive_s)
        if self.polls and not final:
            due = min(due, self._next_poll)
        if now >= due:
            self._due.set()
        else:
            self._timer = loop.call_at(due, self._tick)

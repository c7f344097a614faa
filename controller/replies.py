"""Reply and fault accounting for one cushion: acks owed, naks, unreadable frames, status."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from controller.errors import DeviceRejected, DeviceTimeout

if TYPE_CHECKING:
    from firmware_profiles.commands import BadFrame, Reply

BAD_FRAMES_BEFORE_FAULT = 3
NAKS_BEFORE_FAULT = 3


class ReplyBook:
    """Counts what the cushion owes and what it said; raises when it stops making sense."""

    def __init__(self, zones: int, reply_timeout_s: float, off_level: int = 0) -> None:
        self.reply_timeout_s = reply_timeout_s
        self.off_level = off_level
        self.pending: deque[float] = deque()  # send times of frames still owed an ack
        self.status: dict[str, int] | None = None
        self.status_event = asyncio.Event()
        self.status_serial = 0  # bumped on every status reply
        self.acks = 0  # acks received, ever
        self._bad_frames = 0
        self._naks = 0
        self._level_keys = tuple(f"level{i}" for i in range(zones))

    def owe(self, now: float) -> None:
        """Note that a frame sent at `now` will be acknowledged."""
        self.pending.append(now)

    def forget(self) -> None:
        """Drop what was owed and known (the link went away or the device restarted)."""
        self.pending.clear()
        self.status = None

    def overdue(self, now: float) -> float | None:
        """Raise if an ack is overdue; else return when the oldest owed one falls due."""
        if not self.pending:
            return None
        due = self.pending[0] + self.reply_timeout_s
        if now >= due:
            raise DeviceTimeout(
                f"the cushion did not answer within {self.reply_timeout_s:g} s.",
                hint="Check that the profile matches the device and the link is good.",
            )
        return due

    def bad_frame(self, item: BadFrame) -> str:
        """Count an unreadable reply; raise on the third in a row. Return what to report."""
        self._bad_frames += 1
        if self._bad_frames >= BAD_FRAMES_BEFORE_FAULT:
            raise DeviceRejected(
                "the cushion answers with garbage.",
                hint="Check the baud rate and that the profile matches the device.",
            )
        return f"unreadable reply from the cushion ({item.reason})"

    def reply(self, item: Reply) -> str | None:
        """Count a readable reply; return a fault message for a nak, raise on the third."""
        self._bad_frames = 0
        if item.kind in ("ack", "nak") and self.pending:
            self.pending.popleft()
        if item.kind == "ack":
            self._naks = 0
            self.acks += 1
            return None
        if item.kind == "status":
            self.status = dict(item.fields)
            self.status_serial += 1
            self.status_event.set()
            return None
        if item.kind != "nak":
            return None
        # Refusals in a row mean the profile does not match the device.
        self._naks += 1
        code = item.fields.get("code")
        if self._naks >= NAKS_BEFORE_FAULT:
            raise DeviceRejected(
                f"the cushion refused {self._naks} commands in a row (last nak code {code}).",
                hint="Check that the profile matches the device's firmware.",
            )
        return f"the cushion refused a command (nak code {code})"

    def reported_levels(self, zones: int) -> tuple[int, ...] | None:
        """Return the zone levels the last status reported, or None if it carries none."""
        status = self.status
        if status is None:
            return None
        if all(k in status for k in self._level_keys):
            return tuple(status[k] for k in self._level_keys)
        if "level" in status:
            return (status["level"],) * zones
        return None

    def known(self, name: str, default: int) -> int:
        """Return a field of the last status, or `default`."""
        return (self.status or {}).get(name, default)

    def mismatch(
        self, levels: tuple[int, ...], frequency: int | None, heat: int | None
    ) -> str | None:
        """Say how the last status differs from what was sent, or None if it agrees."""
        shown_levels = self.reported_levels(len(levels))
        if shown_levels is not None and shown_levels != levels:
            return f"status shows levels {shown_levels}, the controller sent {levels}"
        for name, value in (("frequency", frequency), ("heat", heat)):
            shown = self.known(name, -1)
            if value is not None and shown >= 0 and shown != value:
                return f"status shows {name} {shown}, the controller sent {value}"
        return None

    def lapsed(self, levels: tuple[int, ...]) -> bool:
        """Tell whether the status shows only some zones off that were sent on (leases ran
        out), with every other zone as sent: not a restart, which loses them all."""
        shown = self.reported_levels(len(levels))
        if shown is None or "level" in (self.status or {}):
            return False  # one level for all zones cannot show a single lapsed lease
        off = [z for z, (a, b) in enumerate(zip(shown, levels, strict=True)) if a != b]
        held = [z for z, (a, b) in enumerate(zip(shown, levels, strict=True)) if a == b and b]
        return bool(off and held) and all(shown[z] == self.off_level for z in off)

    async def acked(self, count: int, within_s: float) -> bool:
        """Wait until `count` acks have arrived in all; False if not within `within_s`."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within_s
        while self.acks < count:
            if loop.time() >= end or not self.pending:
                return self.acks >= count
            await asyncio.sleep(min(0.005, max(0.0, end - loop.time())))
        return True

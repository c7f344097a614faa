"""Writing targets to an absolute cushion: only what changed, leases renewed in good time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.ceiling import EPS
from firmware_profiles.commands import SetAll, SetFrequency, SetHeat, SetMode, SetZone

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from controller.target import Target
    from firmware_profiles import Profile
    from firmware_profiles.commands import Command


class AbsoluteWriter:
    """Sends a cushion that takes levels the frames that move it from one target to the next."""

    def __init__(self, profile: Profile, send: Callable[[Command], Awaitable[bool]]) -> None:
        self.send = send
        self.lease = profile.limits.lease_s
        # Renewed at half the lease; sooner on a sped-up clock (the device facade sets it),
        # where the real time a frame takes to arrive counts many times over.
        self.renew_after_s = (self.lease or 0.0) / 2
        self._n = len(profile.zones)
        self._lease_t = [float("-inf")] * self._n  # when each zone's lease was last sent
        supports = profile.supports
        self._set_mode = supports("set_mode")
        self._set_frequency = supports("set_frequency")
        self._set_heat = supports("set_heat")
        self._set_zone = supports("set_zone")
        self._set_all = supports("set_all")

    async def write(self, target: Target, old: Target | None, now: float) -> None:
        """Send what differs between `old` (None: nothing known) and `target`."""
        # After a refusal nothing is known: -1 differs from every level, so all are resent.
        before = old.levels if old is not None else (-1,) * self._n
        if target.mode is not None and self._set_mode and (old is None or target.mode != old.mode):
            await self.send(SetMode(target.mode))
        if (
            target.frequency is not None
            and self._set_frequency
            and (old is None or target.frequency != old.frequency)
        ):
            await self.send(SetFrequency(target.frequency))
        if self._set_heat and (target.heat or 0) != ((old.heat if old else None) or 0):
            await self.send(SetHeat(target.heat or 0))
        if target.levels != before:
            changed = [z for z in range(self._n) if target.levels[z] != before[z]]
            await self._levels(target.levels, changed, now)

    def due_at(self, levels: tuple[int, ...]) -> float:
        """Return when the oldest lease of a running zone is due for renewal (inf: none)."""
        if not self.lease or not levels:
            return float("inf")
        oldest = min(
            (t for t, level in zip(self._lease_t, levels, strict=True) if level),
            default=float("inf"),
        )
        return oldest + self.renew_after_s

    def is_due(self, levels: tuple[int, ...], now: float) -> bool:
        """Tell whether a running zone's lease needs renewing now."""
        # EPS: a timer due "now" may fire a float rounding early; renew rather than spin.
        return bool(self.lease) and now + EPS >= self.due_at(levels)

    async def renew(self, levels: tuple[int, ...], now: float) -> None:
        """Renew every running zone's lease that is due, before the device lets go."""
        if not self.lease:
            return
        half = self.renew_after_s
        due = [
            z for z, level in enumerate(levels) if level and now + EPS >= self._lease_t[z] + half
        ]
        await self._levels(levels, due, now)

    async def _levels(self, levels: tuple[int, ...], zones: list[int], now: float) -> None:
        if self._set_all and (len(zones) > 1 or not self._set_zone):
            await self.send(SetAll(levels, self.lease))
            zones = list(range(self._n))
        else:
            for z in zones:
                await self.send(SetZone(z, levels[z], self.lease))
        for z in zones:
            self._lease_t[z] = now

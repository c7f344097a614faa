"""Lazily evaluated physical lags: motor spin-up and heater surface temperature.

Both are exact functions of time between commands, so the simulator needs no ticking timer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class Motor:
    """One zone's motor: actual output moves linearly towards the command (levels)."""

    rate_per_s: float  # levels per second; math.inf = no lag
    t0: float = 0.0
    start: float = 0.0
    target: float = 0.0

    def output(self, t: float) -> float:
        """Return the actual output (levels, float) at loop time ``t`` (s)."""
        if self.start == self.target:
            return self.target
        step = self.rate_per_s * max(0.0, t - self.t0)
        if self.target > self.start:
            return min(self.target, self.start + step)
        return max(self.target, self.start - step)

    def command(self, t: float, target: float) -> None:
        """Set a new commanded level at time ``t`` (s); output moves on from where it is."""
        start, goal = self.start, self.target
        if start != goal:  # inlined output(t): this runs for every zone change
            step = self.rate_per_s * (t - self.t0)
            if goal > start:
                start = goal if start + step >= goal else start + step
            else:
                start = goal if start - step <= goal else start - step
        self.start = start
        self.t0 = t
        self.target = target


@dataclass(slots=True)
class Heater:
    """First-order surface temperature (C) driven by the heat level."""

    levels: int
    ambient_c: float = 24.0
    max_c: float = 44.0  # equilibrium at the top level
    tau_s: float = 120.0
    t0: float = 0.0
    start_c: float = 24.0
    level: int = 0

    def equilibrium_c(self, level: int) -> float:
        """Return the temperature (C) the surface settles at for ``level``."""
        if self.levels <= 0:
            return self.ambient_c
        return self.ambient_c + (self.max_c - self.ambient_c) * level / self.levels

    def temperature_c(self, t: float) -> float:
        """Return the surface temperature (C) at loop time ``t`` (s)."""
        eq = self.equilibrium_c(self.level)
        return eq + (self.start_c - eq) * math.exp(-max(0.0, t - self.t0) / self.tau_s)

    def set_level(self, t: float, level: int) -> None:
        """Change the heat level at time ``t`` (s)."""
        self.start_c = self.temperature_c(t)
        self.t0 = t
        self.level = level

"""The value a technique pattern is made of: one linear piece of per-zone intensity."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PatternSegment:
    """Per-zone intensity 0..1, linear from `start` at t0_s to `end` at t1_s (missing zone = 0)."""

    t0_s: float
    t1_s: float
    start: dict[str, float]
    end: dict[str, float]

    def value(self, zone: str, t_s: float) -> float:
        """Intensity 0..1 of `zone` at `t_s` (same time base as t0_s/t1_s), linear in between."""
        a = self.start.get(zone, 0.0)
        b = self.end.get(zone, 0.0)
        span = self.t1_s - self.t0_s
        frac = min(max((t_s - self.t0_s) / span, 0.0), 1.0) if span > 0 else 0.0
        return a + (b - a) * frac

"""The run-time ceiling and quantisation: pure functions of setpoints, caps and time."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from firmware_profiles.outputs import Intensity

EPS = 1e-6
# Longest gap the ceiling may bridge in one update: one ramp-rule step (10 % per 5 s).
# Long enough that a plan's slow ramp, which reaches the wire only when a device level
# changes, is not held back; short enough that a value jumping after a quiet spell still
# climbs from the ceiling instead of leaping by the whole quiet time's allowance.
MAX_RAMP_GAP_S = 5.0


def capped(levels: Sequence[float], caps: Sequence[float]) -> list[float]:
    """Return intensities (0..1) under their caps; NaN, infinities and negatives mean 0."""
    # `0 <= w < c` is False for NaN: a NaN must never be read as "above the cap, so the cap".
    return [
        w if 0.0 <= w < c else (c if c <= w < math.inf else 0.0)
        for w, c in zip(levels, caps, strict=True)
    ]


class RampCeiling:
    """The ceiling outputs play under: climbs at most `ramp_per_s` per second, from 0."""

    __slots__ = ("ramp_per_s", "t", "value")

    def __init__(self, ramp_per_s: float) -> None:
        self.ramp_per_s = ramp_per_s
        self.value = 0.0
        self.t = 0.0

    def reset(self, now: float) -> None:
        """Drop to zero: after every open, resume, reconnect and device reset."""
        self.value, self.t = 0.0, now

    def allowed(self, now: float) -> float:
        """Return the highest intensity (0..1) allowed at `now`."""
        dt = min(max(0.0, now - self.t), MAX_RAMP_GAP_S)
        return self.value + self.ramp_per_s * dt

    def rise(self, top: float, now: float) -> None:
        """Record that outputs reached `top` (never above `allowed(now)`) at `now`."""
        # The allowance counts from the last rise, so evaluating more often loses nothing.
        if top > self.value:
            self.value, self.t = top, now


def to_levels(levels: Sequence[float], scale: Intensity) -> tuple[int, ...]:
    """Return device levels for intensities (0..1): rounded down, 0 is off."""
    lo, span = scale.min, scale.max - scale.min
    # The profile's to_device, inlined for the hot path.
    top = scale.max
    return tuple(
        [lo if v <= 0.0 else top if v >= 1.0 else lo + math.floor(v * span + 1e-9) for v in levels]
    )


def quantize_matrix(levels: np.ndarray, caps: Sequence[float], scale: Intensity) -> np.ndarray:
    """Return the device levels (samples x zones) for intensities under the zone caps."""
    clean = np.where(np.isfinite(levels), levels, 0.0)
    x = np.minimum(clean, np.asarray(caps))
    q = scale.min + np.floor(np.clip(x, 0.0, 1.0) * (scale.max - scale.min) + 1e-9)
    return np.where(x <= 0.0, scale.min, q).astype(np.int64)

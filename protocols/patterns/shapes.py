"""Technique shapes: per-zone fractions 0..1 of the step's amplitude over one repetition.

Numbers follow DOMAIN.md's technique table; `rate_hz` is the step's `tempo_hz` or the default.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from protocols.techniques import Technique

if TYPE_CHECKING:
    from protocols.patterns.layout import Layout

# (t0_s, t1_s, fraction per zone at t0, fraction per zone at t1), times within one repetition.
Piece = tuple[float, float, tuple[float, ...], tuple[float, ...]]
Shape = Callable[["Layout", float, float, bool], list[Piece]]

# Patterns swing between this share of the amplitude and the amplitude, so a zone never
# drops to zero and jumps back to full at every cycle.
FLOOR: Final = 0.35

DEFAULT_RATE_HZ: Final[dict[Technique, float]] = {
    Technique.STROKING: 1 / 6,  # one top-down sweep every 6 s (4-8 s)
    Technique.SQUEEZING: 0.4,  # pulses per second (0.3-0.5 Hz)
    Technique.RUBBING: 100 / 60,  # movements per second (article, line 149: ~100/min)
    Technique.KNEADING: 0.75,  # rolling cycles per second (0.5-1 Hz)
    Technique.VIBRATION_CONTINUOUS: 1.0,  # unused: steady
    Technique.VIBRATION_INTERMITTENT: 5.0,  # bursts per second (3-8 Hz)
    Technique.SHAKING: 1.5,  # oscillations per second (1-2 Hz)
    Technique.ACUPRESSURE: 1 / 8,  # holds per second (5-10 s holds)
    Technique.HEAT: 1.0,  # unused: motors off
}


def _bump(x: float) -> float:
    """Smooth 0 -> 1 -> 0 over each whole cycle `x`."""
    return math.sin(math.pi * x) ** 2


def _boundaries(duration_s: float, dt: float) -> list[float]:
    # Drop a last sliver shorter than a quarter step: it would only add a tiny segment.
    count = math.ceil(duration_s / dt) + 1
    times = [i * dt for i in range(1, count) if i * dt < duration_s - 0.25 * dt]
    return [0.0, *times, duration_s]


def _sampled(
    duration_s: float, rate_hz: float, per_cycle: int, at: Callable[[float], tuple[float, ...]]
) -> list[Piece]:
    """Sample `at(cycles)` `per_cycle` times a cycle and join the samples linearly."""
    times = _boundaries(duration_s, 1.0 / (rate_hz * per_cycle))
    # Phase from the sample index where possible, so cycle edges land on exact integers.
    values = [at(i / per_cycle) for i in range(len(times) - 1)]
    values.append(at(duration_s * rate_hz))
    return [(times[i], times[i + 1], values[i], values[i + 1]) for i in range(len(times) - 1)]


def _constant(times: list[float], fractions: list[tuple[float, ...]]) -> list[Piece]:
    return [(times[i], times[i + 1], fractions[i], fractions[i]) for i in range(len(times) - 1)]


_PER_CYCLE: Final = 8


def _wave(lay: Layout, duration_s: float, rate_hz: float, lag: float) -> list[Piece]:
    """Travelling swell: row r starts `r * lag` cycles after row 0, at the floor until then."""
    offsets = [0.0] * len(lay.zones)
    for r, row in enumerate(lay.rows):
        for i in row:
            offsets[i] = r * lag

    def at(cycles: float) -> tuple[float, ...]:
        return tuple(FLOOR if cycles < off else FLOOR + (1 - FLOOR) * _bump(cycles - off)
                     for off in offsets)

    return _sampled(duration_s, rate_hz, _PER_CYCLE, at)


def _turns(
    lay: Layout, duration_s: float, rate_hz: float, groups: list[tuple[int, ...]], per: int
) -> list[Piece]:
    """One pulse per cycle, groups taking turns in order; the others rest at the floor."""
    owner = [0] * len(lay.zones)
    for g, group in enumerate(groups):
        for i in group:
            owner[i] = g

    def at(cycles: float) -> tuple[float, ...]:
        turn = math.floor(cycles + 1e-9)
        swell = FLOOR + (1 - FLOOR) * _bump(cycles)
        return tuple(swell if owner[i] == turn % len(groups) else FLOOR for i in range(len(owner)))

    return _sampled(duration_s, rate_hz, per, at)


def stroking(lay: Layout, duration_s: float, rate_hz: float, directed: bool) -> list[Piece]:
    """Slow wave sweeping the rows once a cycle (top-down unless reversed; together if none)."""
    # Lags on whole samples, so every row's crest lands on a sample and reaches the amplitude.
    lag = max(1, round(_PER_CYCLE / len(lay.rows))) / _PER_CYCLE if directed else 0.0
    return _wave(lay, duration_s, rate_hz, lag)


def kneading(lay: Layout, duration_s: float, rate_hz: float, directed: bool) -> list[Piece]:
    """Rolling wave, neighbouring rows a quarter cycle apart so they overlap."""
    return _wave(lay, duration_s, rate_hz, 0.25 if directed else 0.0)


def shaking(lay: Layout, duration_s: float, rate_hz: float, directed: bool) -> list[Piece]:
    """Broad oscillation of every zone together."""
    return _wave(lay, duration_s, rate_hz, 0.0)


def squeezing(lay: Layout, duration_s: float, rate_hz: float, directed: bool) -> list[Piece]:
    """Slow pulses, one row per pulse in travel order (every zone at once if undirected)."""
    groups = list(lay.rows) if directed else [tuple(range(len(lay.zones)))]
    return _turns(lay, duration_s, rate_hz, groups, 8)


def rubbing(lay: Layout, duration_s: float, rate_hz: float, directed: bool) -> list[Piece]:
    """Left/right alternation: one movement per cycle, sides taking turns."""
    groups = [g for g in lay.sides if g] or [tuple(range(len(lay.zones)))]
    if len(groups) == 1:
        # A single group alternates with a rest, so the movement rate stays the same.
        groups.append(())
    return _turns(lay, duration_s, rate_hz, groups, 4)


def vibration_continuous(
    lay: Layout, duration_s: float, rate_hz: float, directed: bool
) -> list[Piece]:
    """Steady: every zone at the amplitude."""
    ones = (1.0,) * len(lay.zones)
    return [(0.0, duration_s, ones, ones)]


def vibration_intermittent(
    lay: Layout, duration_s: float, rate_hz: float, directed: bool
) -> list[Piece]:
    """On/off bursts: on at the amplitude for half a cycle, then the floor."""
    times = _boundaries(duration_s, 0.5 / rate_hz)
    on, off = (1.0,) * len(lay.zones), (FLOOR,) * len(lay.zones)
    return _constant(times, [on if k % 2 == 0 else off for k in range(len(times) - 1)])


def acupressure(lay: Layout, duration_s: float, rate_hz: float, directed: bool) -> list[Piece]:
    """Holds of about 1/rate seconds, each a step higher, the last at the amplitude."""
    count = max(1, round(duration_s * rate_hz))
    times = [k * duration_s / count for k in range(count)] + [duration_s]
    levels = [(FLOOR + (1 - FLOOR) * (k + 1) / count,) * len(lay.zones) for k in range(count)]
    return _constant(times, levels)


def heat(lay: Layout, duration_s: float, rate_hz: float, directed: bool) -> list[Piece]:
    """Motors off; the step's heat level is applied elsewhere."""
    zeros = (0.0,) * len(lay.zones)
    return [(0.0, duration_s, zeros, zeros)]


SHAPES: Final[dict[Technique, Shape]] = {
    Technique.STROKING: stroking,
    Technique.SQUEEZING: squeezing,
    Technique.RUBBING: rubbing,
    Technique.KNEADING: kneading,
    Technique.VIBRATION_CONTINUOUS: vibration_continuous,
    Technique.VIBRATION_INTERMITTENT: vibration_intermittent,
    Technique.SHAKING: shaking,
    Technique.ACUPRESSURE: acupressure,
    Technique.HEAT: heat,
}

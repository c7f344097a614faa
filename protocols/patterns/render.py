"""Render one program step into contiguous linear segments of per-zone intensity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocols.patterns.layout import layout
from protocols.patterns.segment import PatternSegment
from protocols.patterns.shapes import DEFAULT_RATE_HZ, SHAPES

if TYPE_CHECKING:
    from protocols.step import Step


def step_rate_hz(step: Step) -> float:
    """The step's pattern rate in Hz: its `tempo_hz`, or the technique's default."""
    return step.tempo_hz if step.tempo_hz is not None else DEFAULT_RATE_HZ[step.technique]


def render_step(step: Step) -> list[PatternSegment]:
    """Segments covering [0, step.total_s] exactly, each zone within 0..amplitude at every instant.

    The pattern restarts at every repetition; values are shape fractions times the step's
    amplitude at each segment end, so linearity keeps them under the (linear) amplitude.
    Times are seconds from the step start; treat the dicts as read-only.
    """
    lay = layout(step)
    pieces = SHAPES[step.technique](lay, step.duration_s, step_rate_hz(step),
                                    step.direction != "none")
    zones = lay.zones
    duration = step.duration_s
    amplitude = step.amplitude
    last = len(pieces) - 1
    out: list[PatternSegment] = []
    append = out.append
    for rep in range(step.repetitions):
        offset = duration * rep
        a1 = amplitude(offset)
        for k, (p0, p1, f0, f1) in enumerate(pieces):
            t0 = offset + p0
            # Same expression as Step.total_s, so the last segment ends exactly there.
            t1 = duration * (rep + 1) if k == last else offset + p1
            a0 = a1
            a1 = amplitude(t1)
            append(PatternSegment(
                t0,
                t1,
                {z: f * a0 for z, f in zip(zones, f0)},  # noqa: B905 (same length by construction)
                {z: f * a1 for z, f in zip(zones, f1)},  # noqa: B905
            ))
    return out

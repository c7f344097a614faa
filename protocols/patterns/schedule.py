"""A whole program as one list of segments on absolute time, with phase/step/repetition markers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocols.patterns.render import render_step

if TYPE_CHECKING:
    from protocols.phase import Phase
    from protocols.program import Program
    from protocols.step import Step


@dataclass(frozen=True, slots=True)
class ProgramSegment:
    """One pattern segment on program time (seconds from the program start) and where it is from.

    `start`/`end` are per-zone intensity 0..1 (missing zone = 0); the step carries
    `frequency_hz` and `heat`.
    """

    t0_s: float
    t1_s: float
    start: dict[str, float]
    end: dict[str, float]
    phase_index: int
    step_index: int
    repetition: int
    phase: Phase
    step: Step


def program_segments(program: Program) -> list[ProgramSegment]:
    """Every step's segments back to back, covering [0, program.duration_s] without gaps."""
    out: list[ProgramSegment] = []
    step_start = 0.0
    for p, phase in enumerate(program.phases):
        for s, step in enumerate(phase.steps):
            segments = render_step(step)
            # render_step gives every repetition the same number of segments.
            per_rep = len(segments) // step.repetitions
            for k, seg in enumerate(segments):
                out.append(ProgramSegment(
                    t0_s=step_start + seg.t0_s,
                    t1_s=step_start + seg.t1_s,
                    start=seg.start,
                    end=seg.end,
                    phase_index=p,
                    step_index=s,
                    repetition=k // per_rep,
                    phase=phase,
                    step=step,
                ))
            step_start += step.total_s
    return out

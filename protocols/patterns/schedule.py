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
class StepMark:
    """Where a segment comes from: phase and step (indices and values) and the repetition."""

    phase_index: int
    step_index: int
    repetition: int
    phase: Phase
    step: Step


@dataclass(frozen=True, slots=True)
class ProgramSegment:
    """One pattern segment on program time (seconds from the program start) and its origin.

    `start`/`end` are per-zone intensity 0..1 (missing zone = 0), linear in between; the
    step carries `frequency_hz` and `heat`. One `mark` object is shared per repetition.
    """

    t0_s: float
    t1_s: float
    start: dict[str, float]
    end: dict[str, float]
    mark: StepMark

    @property
    def phase(self) -> Phase:
        """The phase this segment belongs to."""
        return self.mark.phase

    @property
    def step(self) -> Step:
        """The step this segment belongs to."""
        return self.mark.step

    @property
    def phase_index(self) -> int:
        """Index of the phase in `program.phases`."""
        return self.mark.phase_index

    @property
    def step_index(self) -> int:
        """Index of the step in `phase.steps`."""
        return self.mark.step_index

    @property
    def repetition(self) -> int:
        """Repetition of the step, from 0."""
        return self.mark.repetition


def program_segments(program: Program) -> list[ProgramSegment]:
    """Every step's segments back to back, covering [0, program.duration_s] without gaps."""
    out: list[ProgramSegment] = []
    append = out.append
    step_start = 0.0
    for p, phase in enumerate(program.phases):
        for s, step in enumerate(phase.steps):
            segments = render_step(step)
            # render_step gives every repetition the same number of segments.
            per_rep = len(segments) // step.repetitions
            marks = [StepMark(p, s, r, phase, step) for r in range(step.repetitions)]
            for k, seg in enumerate(segments):
                append(ProgramSegment(step_start + seg.t0_s, step_start + seg.t1_s,
                                      seg.start, seg.end, marks[k // per_rep]))
            step_start += step.total_s
    return out

"""Hypothesis strategies for arbitrary valid massage programs."""

from __future__ import annotations

from hypothesis import strategies as st

from protocols import Phase, Program, Step, Technique
from protocols.zones import ANATOMICAL_ZONES, ZONE_GROUPS

ZONE_NAMES = (*ANATOMICAL_ZONES, *ZONE_GROUPS)
level = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def steps(draw: st.DrawFn, *, falling: bool = False) -> Step:
    """Draw one valid step; `falling` makes its intensity end at or below its start."""
    a, b = draw(level), draw(level)
    if falling:
        a, b = max(a, b), min(a, b) * 0.1
    technique = draw(st.sampled_from(list(Technique)))
    heat = draw(st.none() | level)
    if technique is Technique.HEAT:
        heat, a, b = max(0.1, heat or 0.5), 0.0, 0.0
    return Step(
        technique=technique,
        zones=draw(st.lists(st.sampled_from(ZONE_NAMES), min_size=1, max_size=3)),
        duration_s=draw(st.integers(3, 40)),
        repetitions=draw(st.integers(1, 3)),
        intensity=(a, b),
        frequency_hz=draw(st.none() | st.floats(5, 100)),
        heat=heat,
    )


@st.composite
def programs(draw: st.DrawFn) -> Program:
    """Draw a short valid program: optional introductory phase, a main phase, a final phase."""
    phases = []
    if draw(st.booleans()):
        phases.append(
            Phase(
                name="intro",
                kind="introductory",
                steps=tuple(draw(st.lists(steps(), min_size=1, max_size=2))),
            )
        )
    phases.append(
        Phase(
            name="main", kind="main", steps=tuple(draw(st.lists(steps(), min_size=1, max_size=4)))
        )
    )
    phases.append(Phase(name="final", kind="final", steps=(draw(steps(falling=True)),)))
    return Program(
        name="generated", title="Generated", sparing=draw(st.booleans()), phases=tuple(phases)
    )

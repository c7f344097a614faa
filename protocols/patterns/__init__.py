"""Technique patterns: per-zone intensity over time for each step, and for whole programs."""

from protocols.patterns.render import render_step, step_rate_hz
from protocols.patterns.schedule import ProgramSegment, StepMark, program_segments
from protocols.patterns.segment import PatternSegment
from protocols.patterns.shapes import DEFAULT_RATE_HZ, FLOOR

__all__ = [
    "DEFAULT_RATE_HZ",
    "FLOOR",
    "PatternSegment",
    "ProgramSegment",
    "StepMark",
    "program_segments",
    "render_step",
    "step_rate_hz",
]

"""Massage programs: the model, the technique patterns, the built-in programs and the loader."""

from protocols.errors import ProgramError
from protocols.loader import builtin_programs, load_program, program_json_schema
from protocols.patterns import PatternSegment, ProgramSegment, program_segments, render_step
from protocols.phase import Phase
from protocols.program import Program
from protocols.step import Step
from protocols.techniques import Technique

__all__ = [
    "PatternSegment",
    "Phase",
    "Program",
    "ProgramError",
    "ProgramSegment",
    "Step",
    "Technique",
    "builtin_programs",
    "load_program",
    "program_json_schema",
    "program_segments",
    "render_step",
]

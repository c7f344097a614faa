"""Massage programs: the model, the technique patterns, the built-in programs and the loader."""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocols.lazy import lazy_getattr

if TYPE_CHECKING:
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

# Imported on first use, so `import protocols` (and the packages built on it) stays cheap.
_WHERE = {
    "ProgramError": "errors",
    "builtin_programs": "loader",
    "load_program": "loader",
    "program_json_schema": "loader",
    "PatternSegment": "patterns",
    "ProgramSegment": "patterns",
    "program_segments": "patterns",
    "render_step": "patterns",
    "Phase": "phase",
    "Program": "program",
    "Step": "step",
    "Technique": "techniques",
}

__getattr__ = lazy_getattr("protocols", _WHERE, globals())

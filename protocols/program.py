"""The massage program: metadata and phases, validated as the load-time safety layer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocols.checks import program_problems
from protocols.contraindications import Contraindication  # noqa: TC001 (pydantic needs it)
from protocols.limits import GENTLE_START_MAX
from protocols.phase import Phase  # noqa: TC001 (pydantic needs it at run time)
from protocols.rules import RuleWarning, Scheme, rule_warnings
from protocols.techniques import Technique  # noqa: TC001 (pydantic needs it at run time)
from protocols.tomlsource import FieldError

_NAME = r"^[a-z0-9][a-z0-9-]*$"


class ProgramInfo(BaseModel):
    """The `[program]` table: what the program is, where it comes from, who should not use it."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(pattern=_NAME, max_length=64)
    title: str = Field(min_length=1)
    summary: str = ""
    sources: tuple[str, ...] = ()
    contraindications: tuple[Contraindication, ...] = ()
    sparing: bool = False
    avoid: tuple[Technique, ...] = ()
    scheme: Scheme | None = Field(
        default=None,
        description="the article's order this program follows; 'classic-lumbar' (lines "
        "380-385) is checked step by step",
    )


def _raise_first(info: ProgramInfo | Program, phases: tuple[Phase, ...]) -> None:
    for loc, message in program_problems(info.avoid, phases):
        raise FieldError(message, loc)


class Program(ProgramInfo):
    """A whole massage session: metadata plus introductory, main and final phases."""

    phases: tuple[Phase, ...]

    @model_validator(mode="after")
    def _safe(self) -> Program:
        _raise_first(self, self.phases)
        return self

    @property
    def screening_keys(self) -> tuple[str, ...]:
        """Return the screening keys this program lists (free-text entries have none)."""
        return tuple(c.key for c in self.contraindications if c.key is not None)

    @property
    def duration_s(self) -> float:
        """Duration of the whole program in seconds."""
        return sum(phase.duration_s for phase in self.phases)

    def rule_warnings(self) -> list[RuleWarning]:
        """Return the article's session rules this program breaks (it still loads)."""
        return rule_warnings(self.phases, self.scheme)

    def notes(self) -> list[str]:
        """Warnings that do not refuse the program (article rules, no final phase, ...)."""
        out = [str(w) for w in self.rule_warnings()]
        if self.phases[-1].kind != "final":
            out.append("there is no final phase; the article ends every session by reducing "
                       "intensity gradually (line 132)")
        first = self.phases[0].steps[0]
        if first.intensity[0] > GENTLE_START_MAX:
            out.append(f"the first step starts at {first.intensity[0]:.0%}; the article says all "
                       "effects begin with minimal intensity (line 282)")
        for phase in self.phases:
            for step in phase.steps:
                if step.direction == "bottom-up":
                    out.append(f"phase '{phase.name}': a {step.technique.value} step runs "
                               "bottom-up; the article moves top-down except acupressure "
                               "(line 268)")
        return out


class ProgramFile(BaseModel):
    """The TOML file shape: a `[program]` table and `[[phase]]` tables with `[[phase.step]]`."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    program: ProgramInfo
    phase: tuple[Phase, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _safe(self) -> ProgramFile:
        _raise_first(self.program, self.phase)
        return self

    def to_program(self) -> Program:
        """Return the flat `Program` this file describes."""
        return Program(**self.program.model_dump(), phases=self.phase)

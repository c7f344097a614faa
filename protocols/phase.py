"""A program phase: introductory, main or final, as the article's three-phase session."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from protocols.step import Step  # noqa: TC001 (pydantic needs it at run time)

PhaseKind = Literal["introductory", "main", "final"]

# Article, lines 128-132: introductory, basic (main), final, in this order.
PHASE_ORDER: dict[str, int] = {"introductory": 0, "main": 1, "final": 2}


class Phase(BaseModel):
    """A named run of steps of one kind (introductory, main or final)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False
    )

    name: str = Field(min_length=1)
    kind: PhaseKind
    steps: tuple[Step, ...] = Field(min_length=1, validation_alias=AliasChoices("step", "steps"))
    cite: str = ""

    @property
    def duration_s(self) -> float:
        """Duration of the phase in seconds, every step and repetition."""
        return sum(step.total_s for step in self.steps)

"""One program step: a technique on some zones, for a duration, repeated, at an intensity."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from protocols.limits import MAX_FREQUENCY_HZ, MAX_REPETITIONS, MAX_SESSION_S, MAX_TEMPO_HZ
from protocols.quantities import (
    DURATION_FORMS,
    INTENSITY_FORMS,
    parse_duration,
    parse_intensity,
    parse_level,
)
from protocols.techniques import Technique
from protocols.tomlsource import FieldError
from protocols.zones import ANATOMICAL_ZONES, ZONE_GROUPS, expand_zones

Direction = Literal["top-down", "bottom-up", "none"]


class Step(BaseModel):
    """A technique on anatomical zones; `duration_s` is per repetition, intensity 0..1."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False
    )

    technique: Technique
    zones: tuple[str, ...] = Field(
        min_length=1,
        description="anatomical zones or groups, expanded to anatomical zones in top-down "
        f"order; names: {', '.join((*ANATOMICAL_ZONES, *ZONE_GROUPS))}",
    )
    duration_s: float = Field(
        validation_alias=AliasChoices("duration", "duration_s"),
        description=f"per repetition: {DURATION_FORMS}",
    )
    repetitions: int = Field(default=1, ge=1, le=MAX_REPETITIONS)
    intensity: tuple[float, float] = Field(
        default=(0.0, 0.0),
        description=f"start -> end over the whole step: {INTENSITY_FORMS}",
    )
    frequency_hz: float | None = Field(
        default=None, gt=0, le=MAX_FREQUENCY_HZ, description="motor vibration frequency, Hz"
    )
    tempo_hz: float | None = Field(
        default=None, gt=0, le=MAX_TEMPO_HZ,
        description="pattern rate override: cycles, movements, bursts or holds per second",
    )
    direction: Direction = Field(
        default="top-down", description="zone order of the pattern; acupressure defaults to none"
    )
    heat: float | None = Field(default=None, description="0..1 of the device's top heat level")
    note: str = ""
    cite: str = Field(default="", description="article lines this step follows")

    @field_validator("technique", mode="before")
    @classmethod
    def _known_technique(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in Technique.__members__.values():
            known = ", ".join(t.value for t in Technique)
            raise ValueError(f"unknown technique '{value}'; use one of: {known}")
        return value

    @field_validator("zones", mode="before", json_schema_input_type=str | list[str])
    @classmethod
    def _expand(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return expand_zones(list(value))
        return value

    @field_validator("duration_s", mode="before", json_schema_input_type=float | str)
    @classmethod
    def _duration(cls, value: Any) -> float:
        seconds = parse_duration(value)
        # One repetition longer than a whole session can never be run; refusing it here also
        # keeps sums of durations finite (10 repetitions of 1e308 s overflow to inf).
        if seconds > MAX_SESSION_S:
            raise ValueError(
                f"a step of {seconds:g} s is longer than a whole session "
                f"({MAX_SESSION_S / 60:.0f} min, article line 270); shorten it"
            )
        return seconds

    @field_validator(
        "intensity", mode="before", json_schema_input_type=float | str | list[float | str]
    )
    @classmethod
    def _intensity(cls, value: Any) -> tuple[float, float]:
        return parse_intensity(value)

    @field_validator("heat", mode="before", json_schema_input_type=float | str | None)
    @classmethod
    def _heat(cls, value: Any) -> float | None:
        return None if value is None else parse_level(value, "heat")

    @model_validator(mode="before")
    @classmethod
    def _default_direction(cls, data: Any) -> Any:
        # Article, line 268: everything top-down except acupressure, which has no direction.
        if (
            isinstance(data, dict)
            and "direction" not in data
            and data.get("technique") == Technique.ACUPRESSURE.value
        ):
            return {**data, "direction": "none"}
        return data

    @model_validator(mode="after")
    def _coherent(self) -> Step:
        if self.technique is Technique.HEAT:
            if self.intensity != (0.0, 0.0):
                raise FieldError(
                    "a heat step drives no motors, so its intensity must be 0 or left out; "
                    "put a motor technique in its own step",
                    ("intensity",),
                )
            if not self.heat:
                raise FieldError("a heat step needs a heat level above 0, e.g. heat = 0.5",
                                 ("heat",))
        elif "intensity" not in self.model_fields_set:
            raise FieldError(
                f"a {self.technique.value} step needs an intensity, e.g. intensity = "
                '["20%", "30%"]',
                ("intensity",),
            )
        return self

    @property
    def total_s(self) -> float:
        """Duration of the whole step in seconds, all repetitions."""
        return self.duration_s * self.repetitions

    def amplitude(self, t_s: float) -> float:
        """Intensity ceiling 0..1 at `t_s` seconds into the step (linear start -> end)."""
        start, end = self.intensity
        if start == end:
            return start
        frac = t_s / (self.duration_s * self.repetitions)
        if frac <= 0.0:
            return start
        if frac >= 1.0:
            return end
        value = start + (end - start) * frac
        # Rounding can step a hair past the end (0.1 + 0.2 > 0.3); the ceiling must not.
        low, high = (start, end) if start < end else (end, start)
        return low if value < low else high if value > high else value

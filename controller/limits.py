"""Every safety limit with its default, in one place; users may only narrow them."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Hard bounds: even explicit configuration cannot go past these.
HARD_BOUNDS: Final[dict[str, float]] = {
    "max_intensity": 1.0,
    "intro_max_intensity": 0.6,
    "kidney_max_intensity": 0.5,
    "sparing_max_intensity": 0.7,
    "ramp_per_s": 0.04,
    "session_max_s": 40 * 60.0,
    "heat_max": 1.0,
}


class SafetyLimits(BaseModel):
    """The safety envelope's limits; intensities are fractions (0..1) of the device's range."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_intensity: float = Field(0.8, ge=0, le=1, description="overall cap, any zone")
    intro_max_intensity: float = Field(0.4, ge=0, le=1, description="cap in introductory phase")
    kidney_max_intensity: float = Field(0.3, ge=0, le=1, description="cap on kidney-tagged zones")
    sparing_max_intensity: float = Field(
        0.5, ge=0, le=1, description="cap for sparing programs and first sessions"
    )
    ramp_per_s: float = Field(
        0.02, gt=0, le=1, description="ceiling rise per second (0.02 = 10 % per 5 s)"
    )
    session_max_s: float = Field(40 * 60.0, gt=0, description="hard cap on session length")
    final_ramp_down_s: float = Field(
        60.0, ge=0, description="the last seconds fall linearly to zero at least this slowly"
    )
    heat_max: float = Field(0.67, ge=0, le=1, description="heat cap, fraction of top level")
    heat_step_down_after_s: float = Field(
        600.0, gt=0, description="heat drops one level after this long on"
    )
    sparing: bool = Field(False, description="force sparing mode (first sessions)")

    @model_validator(mode="after")
    def _within_hard_bounds(self) -> SafetyLimits:
        for name, bound in HARD_BOUNDS.items():
            if getattr(self, name) > bound:
                raise ValueError(f"{name} may not exceed {bound:g}")
        return self


DEFAULT_LIMITS: Final = SafetyLimits()


def narrow(
    base: SafetyLimits, changes: dict[str, Any], *, allow_raise: bool = False
) -> SafetyLimits:
    """Return `base` with `changes` applied; refuses to loosen a limit unless `allow_raise`."""
    looser = [
        name
        for name, value in changes.items()
        if name not in ("sparing",) and _loosens(name, getattr(base, name), value)
    ]
    if looser and not allow_raise:
        names = ", ".join(looser)
        raise ValueError(
            f"{names} would loosen a safety limit; set allow_raise = true in the config "
            "file's [limits] section if you really mean it"
        )
    merged = base.model_dump() | changes
    if base.sparing and not allow_raise:
        merged["sparing"] = True
    return SafetyLimits.model_validate(merged)


def _loosens(name: str, old: float, new: float) -> bool:
    # A longer final ramp-down or a later heat step-down is only safer in one direction each.
    if name == "final_ramp_down_s":
        return new < old
    return float(new) > float(old)

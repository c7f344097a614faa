"""Every safety limit with its default, in one place; users may only narrow them."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocols.errors import InputError
from protocols.tomlsource import FieldError

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

# Limits that are only safer in one direction. A user (config file, options) may move them
# that way from the documented default and never the other, not even with `allow_raise`:
# a shorter final ramp-down, a later heat step-down or a shorter introductory window is never
# "a little looser", it removes the protection.
ONE_WAY: Final[dict[str, Literal["longer", "shorter"]]] = {
    "final_ramp_down_s": "longer",
    "heat_step_down_after_s": "shorter",
    "intro_min_s": "longer",
}


class LimitError(InputError):
    """A limit change that is malformed, loosens a limit unasked or passes a hard bound."""


class SafetyLimits(BaseModel):
    """The safety envelope's limits; intensities are fractions (0..1) of the device's range.

    The model accepts every finite value in its ranges (simulations and tests build their own);
    what a user may ask for is decided by `narrow`, the one path from config and options.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    max_intensity: float = Field(0.8, ge=0, le=1, description="overall cap, any zone")
    intro_max_intensity: float = Field(0.4, ge=0, le=1, description="cap in introductory phase")
    intro_min_s: float = Field(
        120.0, ge=0, le=40 * 60.0,
        description="the introductory cap covers at least the first seconds of every session, "
        "whatever its phases are called",
    )
    kidney_max_intensity: float = Field(0.3, ge=0, le=1, description="cap on kidney-tagged zones")
    sparing_max_intensity: float = Field(
        0.5, ge=0, le=1, description="cap for sparing programs and first sessions"
    )
    ramp_per_s: float = Field(
        0.02, gt=0, le=1, description="ceiling rise per second (0.02 = 10 % per 5 s)"
    )
    session_max_s: float = Field(40 * 60.0, gt=0, description="hard cap on session length")
    final_ramp_down_s: float = Field(
        60.0, ge=0, le=40 * 60.0,
        description="the last seconds fall linearly to zero at least this slowly",
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
                raise FieldError(f"{name} may not exceed {bound:g}", (name,))
        return self


DEFAULT_LIMITS: Final = SafetyLimits()


def narrow(
    base: SafetyLimits, changes: dict[str, Any], *, allow_raise: bool = False
) -> SafetyLimits:
    """Return `base` with `changes` applied; LimitError (naming the limit as `key`) if a value
    is malformed, loosens a limit without `allow_raise`, passes a hard bound, or moves a
    one-way limit (ONE_WAY) the unsafe way, which even `allow_raise` cannot do."""
    unknown = [name for name in changes if name not in SafetyLimits.model_fields]
    if unknown:
        raise LimitError(f"there is no limit '{unknown[0]}'.", key=unknown[0],
                         hint=f"Known limits: {', '.join(SafetyLimits.model_fields)}.")
    merged = base.model_dump() | changes
    if base.sparing and not allow_raise:
        merged["sparing"] = True
    new = _validated(merged, changes)
    for name, way in ONE_WAY.items():
        if name not in changes:
            continue
        value, default = getattr(new, name), getattr(DEFAULT_LIMITS, name)
        if (value < default) if way == "longer" else (value > default):
            than = "shorter" if way == "longer" else "longer"
            raise LimitError(
                f"{name} = {value:g} s is {than} than the default {default:g} s; this limit can "
                f"only be made {way}, even with allow_raise.",
                key=name, hint=f"Use {'at least' if way == 'longer' else 'at most'} {default:g}.",
            )
    looser = [
        name for name in changes if _loosens(name, getattr(base, name), getattr(new, name))
    ]
    if looser and not allow_raise:
        raise LimitError(
            f"{', '.join(looser)} would loosen a safety limit "
            f"({looser[0]} {getattr(base, looser[0])!r} -> {getattr(new, looser[0])!r}).",
            key=looser[0],
            hint="Set allow_raise = true in the config file's [limits] table if you really "
            "mean it; the hard bounds hold even then.",
        )
    return new


def _validated(merged: dict[str, Any], changes: dict[str, Any]) -> SafetyLimits:
    """Validate merged limits, turning pydantic's complaint into a LimitError naming the key."""
    try:
        return SafetyLimits.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = (*first["loc"], *getattr(first.get("ctx", {}).get("error"), "loc", ()))
        name = str(loc[0]) if loc else None
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "finite_number":
            message = "must be a finite number, not inf or nan"
        hint = None
        value = changes.get(name) if name is not None else None
        if (name is not None and name.endswith("intensity") and isinstance(value, int | float)
                and 2 <= value <= 100):
            hint = (f"Intensities are fractions of the device's range: write {value / 100:g} "
                    f"for {value:g} %.")
        text = message if name is None or message.startswith(name) else f"{name}: {message}"
        raise LimitError(text.rstrip(".") + ".", key=name, hint=hint) from exc


def _loosens(name: str, old: object, new: object) -> bool:
    if name == "sparing":
        return bool(old) and not new  # turning sparing mode off loosens it
    assert isinstance(old, int | float) and isinstance(new, int | float)
    if ONE_WAY.get(name) == "longer":  # a longer final ramp-down is the safer one
        return float(new) < float(old)
    return float(new) > float(old)

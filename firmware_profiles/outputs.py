"""A profile's output ranges: intensity levels, vibration frequency, heat levels."""

from __future__ import annotations

import math
from bisect import bisect_right
from functools import cached_property
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Multiplying a float by a span can land a hair below an integer (0.29 * 100 = 28.99...);
# this slack keeps FLOOR from losing a whole level to representation error.
_EPS = 1e-9

# Sanity bounds on device integers. A stepping cushion is driven by one press per level, so a
# level count beyond two bytes would take hours of presses; raw values are at most four bytes
# (the widest binary field); no massage motor vibrates above 1 kHz.
MAX_LEVEL: Final = 65535
MAX_RAW: Final = 0xFFFF_FFFF
MAX_HZ: Final = 1000.0
MAX_HEAT_LEVELS: Final = 100


class FrozenModel(BaseModel):
    """Base of every profile model: immutable, unknown keys and non-finite numbers refused."""

    # inf and nan pass gt/le bounds in surprising ways (nan compares false to everything);
    # no profile quantity is meaningfully infinite, so they are refused everywhere.
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False
    )


class Intensity(FrozenModel):
    """Intensity levels of one zone: `min` is off, `max` is full scale (device integers)."""

    min: int = Field(0, ge=0, le=MAX_LEVEL, description="Device level that means off.")
    max: int = Field(gt=0, le=MAX_LEVEL, description="Device level at full scale.")

    @model_validator(mode="after")
    def _ordered(self) -> Intensity:
        if self.max <= self.min:
            raise ValueError(f"intensity max ({self.max}) must be above min ({self.min})")
        return self

    def to_device(self, x: float) -> int:
        """Map x (0..1 of full scale, clamped) to a level, rounding DOWN; 0 gives off."""
        if x != x:  # NaN: a bug upstream; refuse rather than guess
            raise ValueError("intensity is NaN")
        if x <= 0.0:
            return self.min
        if x >= 1.0:
            return self.max
        return self.min + math.floor(x * (self.max - self.min) + _EPS)

    def from_device(self, level: int) -> float:
        """Map a device level back to 0..1 of full scale."""
        return (level - self.min) / (self.max - self.min)


class FrequencyPoint(FrozenModel):
    """One allowed raw value of a tabulated frequency and the Hz it produces."""

    raw: int = Field(ge=0, le=MAX_RAW, description="Value sent to the device.")
    hz: float = Field(gt=0, le=MAX_HZ, description="Vibration frequency it produces, Hz.")


def _usable_hz(value: object) -> bool:
    """Return whether a table entry's hz can fill min_hz/max_hz (else its own error shows)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and 0 < value <= MAX_HZ)


def _table_form_needs_no_hz_range(schema: dict[str, Any]) -> None:
    schema["required"] = [k for k in schema.get("required", []) if k not in ("min_hz", "max_hz")]


class Frequency(FrozenModel):
    """Vibration frequency: a linear raw range mapped to Hz, or a table raw -> Hz."""

    model_config = ConfigDict(json_schema_extra=_table_form_needs_no_hz_range)

    min_hz: float = Field(gt=0, le=MAX_HZ, description="Lowest frequency, Hz (filled in from a "
                          "table).")
    max_hz: float = Field(gt=0, le=MAX_HZ, description="Highest frequency, Hz (filled in from a "
                          "table).")
    raw_min: int | None = Field(None, ge=0, le=MAX_RAW, description="Raw value at min_hz "
                                "(linear form).")
    raw_max: int | None = Field(None, ge=0, le=MAX_RAW, description="Raw value at max_hz "
                                "(linear form).")
    table: tuple[FrequencyPoint, ...] | None = Field(
        None, min_length=2, description="Allowed raw values and their Hz (table form)."
    )


    @model_validator(mode="before")
    @classmethod
    def _fill_from_table(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("table") is not None:
            if "min_hz" in data or "max_hz" in data or "raw_min" in data or "raw_max" in data:
                raise ValueError(
                    "give either a table or min_hz/max_hz/raw_min/raw_max, not both"
                )
            table = data["table"]
            points = table if isinstance(table, list | tuple) else ()
            hzs = [p.get("hz") if isinstance(p, dict) else getattr(p, "hz", None) for p in points]
            if hzs and all(_usable_hz(h) for h in hzs):
                data = {**data, "min_hz": min(hzs), "max_hz": max(hzs)}  # type: ignore[type-var]
            else:
                # A malformed table: let the table's own error be the one reported, not a
                # missing min_hz the user never had to write.
                data = {**data, "min_hz": 1.0, "max_hz": 1.0}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Frequency:
        if self.table is None:
            if self.raw_min is None or self.raw_max is None:
                raise ValueError("a linear frequency needs raw_min and raw_max (or give a table)")
            if self.raw_max <= self.raw_min or self.max_hz <= self.min_hz:
                raise ValueError("frequency raw_max and max_hz must be above raw_min and min_hz")
            return self
        points = sorted(self.table, key=lambda p: p.hz)
        if len({p.hz for p in points}) != len(points) or len({p.raw for p in points}) != len(
            points
        ):
            raise ValueError("every frequency table entry needs its own raw value and Hz")
        return self

    # Lookup tables of the table form, built on first use. cached_property keeps them in the
    # instance dict, a plain lookup; pydantic private attributes cost microseconds per read.
    @cached_property
    def _points(self) -> tuple[FrequencyPoint, ...]:
        return tuple(sorted(self.table or (), key=lambda p: p.hz))

    @cached_property
    def _hzs(self) -> tuple[float, ...]:
        return tuple(p.hz for p in self._points)

    @cached_property
    def _raws(self) -> tuple[int, ...]:
        return tuple(p.raw for p in self._points)

    @cached_property
    def _by_raw(self) -> dict[int, float]:
        return {p.raw: p.hz for p in self._points}

    def to_device(self, hz: float) -> int:
        """Return the raw value of the allowed frequency at or below hz, clamped into range."""
        if self.table is not None:
            i = bisect_right(self._hzs, hz + _EPS) - 1
            return self._raws[max(i, 0)]
        lo, hi = self.raw_min, self.raw_max
        assert lo is not None and hi is not None
        if hz <= self.min_hz:
            return lo
        if hz >= self.max_hz:
            return hi
        return lo + math.floor((hz - self.min_hz) * (hi - lo) / (self.max_hz - self.min_hz) + _EPS)

    def from_device(self, raw: int) -> float:
        """Return the Hz a raw value produces; ValueError if the device does not accept it."""
        if self.table is not None:
            try:
                return self._by_raw[raw]
            except KeyError:
                raise ValueError(f"raw frequency {raw} is not in the table") from None
        lo, hi = self.raw_min, self.raw_max
        assert lo is not None and hi is not None
        if not lo <= raw <= hi:
            raise ValueError(f"raw frequency {raw} is outside {lo}..{hi}")
        return self.min_hz + (raw - lo) * (self.max_hz - self.min_hz) / (hi - lo)

    def accepts(self, raw: int) -> bool:
        """Return whether the device accepts this raw frequency value."""
        if self.table is not None:
            return raw in self._by_raw
        assert self.raw_min is not None and self.raw_max is not None
        return self.raw_min <= raw <= self.raw_max

    @property
    def raw_values(self) -> tuple[int, ...]:
        """The lowest and highest raw values (table: every allowed value, ascending Hz)."""
        if self.table is not None:
            return self._raws
        assert self.raw_min is not None and self.raw_max is not None
        return (self.raw_min, self.raw_max)


class Heat(FrozenModel):
    """Heat levels: 0 is off, 1..levels are on."""

    levels: int = Field(ge=1, le=MAX_HEAT_LEVELS, description="Number of heat levels above off.")

"""One field's value <-> raw wire value conversion, with range checks (hot path)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from firmware_profiles.commands import ProfileError

_EPS = 1e-9

Allowed = tuple[int, int] | frozenset[int] | None


@dataclass(frozen=True, slots=True)
class FieldCodec:
    """Converts one field: raw = floor(value * scale) + offset, or through a value map."""

    key: str  # key in the frame's flat values dict
    label: str  # "set_zone.level", for error messages
    is_float: bool  # duration_s: seconds as float
    scale: float
    offset: int
    to_map: dict[int, int | str] | None
    from_map: dict[int | str, int] | None
    capacity: int | None  # highest raw value the field can hold; None: unbounded text
    allowed: Allowed  # values the profile allows (encode side check); None: no check
    # Derived: plain integer fields (no map, scale 1) take the inlined fast path in the frames:
    # raw = value + offset, valid when lo <= raw <= hi; anything else goes through to_raw.
    fast: bool = field(init=False)
    lo: int = field(init=False)
    hi: int = field(init=False)

    def __post_init__(self) -> None:
        fast = self.to_map is None and self.scale == 1 and not self.is_float
        lo, hi = 0, self.capacity if self.capacity is not None else 1 << 62
        if isinstance(self.allowed, tuple):
            lo = max(lo, self.allowed[0] + self.offset)
            hi = min(hi, self.allowed[1] + self.offset)
        elif self.allowed is not None:
            fast = False
        object.__setattr__(self, "fast", fast)
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    def to_raw(self, value: float) -> int | str:
        """Return the raw value of a value; ProfileError if it is not allowed or does not fit."""
        allowed = self.allowed
        if allowed is not None and not self.is_float:
            if type(allowed) is tuple:
                if not allowed[0] <= value <= allowed[1]:
                    raise ProfileError(
                        f"{self.label} = {value} is outside {allowed[0]}..{allowed[1]}."
                    )
            elif value not in allowed:
                raise ProfileError(f"{self.label} = {value} is not one of {sorted(allowed)}.")
        if self.to_map is not None:
            try:
                return self.to_map[int(value)]
            except KeyError:
                raise ProfileError(f"{self.label} = {value} has no entry in its map.") from None
        if self.scale == 1 and not self.is_float:
            raw = int(value) + self.offset
        else:
            raw = math.floor(value * self.scale + _EPS) + self.offset
        if raw < 0 or (self.capacity is not None and raw > self.capacity):
            top = "" if self.capacity is None else f"..{self.capacity}"
            raise ProfileError(
                f"{self.label} = {value} gives raw {raw}, which does not fit the field (0{top})."
            )
        return raw

    def from_raw(self, raw: int | str) -> int | float:
        """Return the field value for a raw value; ValueError if the raw value is impossible."""
        if self.from_map is not None:
            try:
                return self.from_map[raw]
            except KeyError:
                raise ValueError(f"{self.label}: raw {raw!r} is not in the map") from None
        assert isinstance(raw, int)
        if self.is_float:
            return (raw - self.offset) / self.scale
        if self.scale == 1:
            return raw - self.offset
        value = (raw - self.offset) / self.scale
        whole = round(value)
        if abs(value - whole) > 1e-6:
            raise ValueError(f"{self.label}: raw {raw} is not a whole value at scale {self.scale}")
        return whole

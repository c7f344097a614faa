"""Parse the human forms a program file uses for durations and intensities."""

from __future__ import annotations

import math
import re

_MSS = re.compile(r"^(\d+):([0-5]\d)(\.\d+)?$")
_UNIT = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|m|min)$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")

DURATION_FORMS = 'seconds as a number (40), "40s", "2min" or "m:ss" ("1:30")'
INTENSITY_FORMS = '0..1 (0.25), a percent string ("25%") or a pair [start, end]'


def parse_duration(value: object) -> float:
    """Return duration_s (> 0) from 40, 40.5, "40s", "2min" or "1:30"."""
    seconds: float
    if isinstance(value, bool):
        raise ValueError(f"a duration cannot be true/false; write {DURATION_FORMS}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if mss := _MSS.match(text):
            seconds = int(mss.group(1)) * 60 + float(mss.group(2) + (mss.group(3) or ""))
        elif unit := _UNIT.match(text):
            seconds = float(unit.group(1)) * (60 if unit.group(2).startswith("m") else 1)
        else:
            raise ValueError(f"cannot read the duration '{value}'; write {DURATION_FORMS}")
    else:
        raise ValueError(f"cannot read the duration {value!r}; write {DURATION_FORMS}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


def parse_level(value: object, what: str = "intensity") -> float:
    """Return a level in 0..1 from 0.25 or "25%"."""
    level: float
    if isinstance(value, bool):
        raise ValueError(f"{what} cannot be true/false; write {INTENSITY_FORMS}")
    if isinstance(value, int | float):
        level = float(value)
    elif isinstance(value, str) and (pct := _PERCENT.match(value.strip())):
        level = float(pct.group(1)) / 100.0
    else:
        raise ValueError(f"cannot read the {what} {value!r}; write {INTENSITY_FORMS}")
    if not math.isfinite(level) or not 0.0 <= level <= 1.0:
        raise ValueError(
            f"{what} {value!r} is outside 0..1; write a fraction such as 0.5 or a percent "
            'such as "50%"'
        )
    return level


def parse_intensity(value: object) -> tuple[float, float]:
    """Return (start, end) in 0..1 from a level or a one- or two-item list of levels."""
    if isinstance(value, list | tuple):
        if len(value) == 1:
            value = (value[0], value[0])
        if len(value) != 2:
            raise ValueError(f"an intensity list needs [start, end], got {len(value)} items")
        return parse_level(value[0]), parse_level(value[1])
    level = parse_level(value)
    return level, level

"""The handful of profile facts the firmware model obeys, as one plain value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Control = Literal["absolute", "stepping"]


@dataclass(frozen=True, slots=True)
class FirmwareSpec:
    """What a cushion's firmware enforces: outputs, ranges, time-outs and reply habits."""

    zone_count: int
    control: Control = "absolute"
    max_level: int = 10  # intensity levels min_level..max_level
    min_level: int = 0  # the level that means off
    frequency_range: tuple[int, int] | None = None  # raw device values, inclusive
    frequency_table: tuple[int, ...] | None = None  # if set, only these raw values exist
    heat_levels: int = 0  # 0 = no heater
    modes: tuple[int, ...] = ()  # device mode numbers, in press/cycle order
    max_update_hz: float | None = None
    watchdog_s: float | None = None
    auto_off_s: float | None = None
    max_lease_s: float | None = None  # longest lease the firmware grants, s
    acks: bool = False  # ack every valid command
    naks: bool = False  # the profile has a nak reply
    status_fields: tuple[str, ...] | None = None  # None: send every field the model knows

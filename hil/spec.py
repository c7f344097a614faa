"""The handful of profile facts the firmware model obeys, as one plain value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from firmware_profiles import Profile

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
    frequency_default: int | None = None  # raw value after power-up
    heat_levels: int = 0  # 0 = no heater
    modes: tuple[int, ...] = ()  # device mode numbers, in press/cycle order
    max_update_hz: float | None = None
    watchdog_s: float | None = None
    auto_off_s: float | None = None
    max_lease_s: float | None = None  # longest lease the firmware grants, s
    acks: bool = False  # ack every valid command
    naks: bool = False  # the profile has a nak reply
    status_fields: tuple[str, ...] | None = None  # None: send every field the model knows


def spec_from_profile(profile: Profile) -> FirmwareSpec:
    """Return what the firmware described by ``profile`` enforces."""
    freq = profile.frequency
    limits = profile.limits
    raws = freq.raw_values if freq is not None else ()
    return FirmwareSpec(
        zone_count=len(profile.zones),
        control=profile.control,
        max_level=profile.intensity.max,
        min_level=profile.intensity.min,
        frequency_range=(min(raws), max(raws)) if raws else None,
        frequency_table=tuple(sorted(raws)) if freq is not None and freq.table else None,
        frequency_default=raws[0] if raws else None,  # the lowest frequency
        heat_levels=profile.heat.levels if profile.heat is not None else 0,
        modes=tuple(profile.modes.values()),
        max_update_hz=limits.max_update_hz,
        watchdog_s=limits.watchdog_s,
        auto_off_s=limits.auto_off_s,
        # limits.lease_s is what the controller asks for; the frame's field bounds the rest.
        max_lease_s=None,
        acks=limits.ack_every_command and profile.supports("ack"),
        naks=profile.supports("nak"),
    )

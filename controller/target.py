"""What the wire carries, in device units: a `Target` from a clamped setpoint, and back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.ceiling import EPS, to_levels
from controller.events import SetpointSent

if TYPE_CHECKING:
    from controller.timeline import Setpoint
    from firmware_profiles import Profile


@dataclass(frozen=True, slots=True)
class Target:
    """Outputs in device units: what the wire carries."""

    levels: tuple[int, ...]
    frequency: int | None = None
    heat: int | None = None
    mode: int | None = None


def make_target(sp: Setpoint, levels: list[float], profile: Profile, heat_max: float) -> Target:
    """Return the device units for clamped intensities (0..1) and the setpoint's other outputs."""
    freq = None
    if sp.frequency_hz is not None and profile.frequency is not None:
        freq = profile.frequency.to_device(sp.frequency_hz)
    heat = None
    if sp.heat is not None and profile.heat is not None:
        wanted = sp.heat if 0.0 <= sp.heat <= 1.0 else 0.0  # NaN or out of range: off
        heat = int(min(wanted, heat_max) * profile.heat.levels + EPS)
    mode = profile.modes.get(sp.mode) if sp.mode is not None else None
    return Target(to_levels(levels, profile.intensity), freq, heat, mode)


def sent_event(t_s: float, target: Target, profile: Profile, ceiling: float) -> SetpointSent:
    """Return the event saying `target` went to the wire (levels and their fraction of scale)."""
    scale = profile.intensity
    freq = None
    if target.frequency is not None and profile.frequency is not None:
        freq = profile.frequency.from_device(target.frequency)
    mode = None
    if target.mode is not None:
        mode = next((k for k, v in profile.modes.items() if v == target.mode), None)
    lo, span = scale.min, scale.max - scale.min
    return SetpointSent(
        t_s,
        target.levels,
        tuple([(v - lo) / span for v in target.levels]),  # Intensity.from_device, inlined
        freq,
        target.heat,
        mode,
        round(ceiling, 6),
    )

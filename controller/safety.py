"""The plan-time safety envelope: caps, the ramp rule, the final ramp-down and heat rules."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from controller.timeline import Clamp, Setpoint, Timeline

if TYPE_CHECKING:
    from controller.limits import SafetyLimits
    from firmware_profiles import Profile

_EPS = 1e-9
# Clamps smaller than half a percent change nothing a person can feel; they are applied but
# not listed, so `cushion plan` shows what matters.
_REPORT_MIN = 0.005


def zone_caps(profile: Profile, limits: SafetyLimits, *, sparing: bool) -> list[list[tuple[float, str]]]:
    """Return, per zone, the static caps that apply to it with the rule's name."""
    caps: list[list[tuple[float, str]]] = []
    for zone in profile.zones:
        rules = [(limits.max_intensity, "overall cap")]
        if zone.kidney:
            rules.append((limits.kidney_max_intensity, "kidney-zone cap"))
        if sparing or limits.sparing:
            rules.append((limits.sparing_max_intensity, "sparing mode"))
        caps.append(rules)
    return caps


# Clamps of one rule on one zone less than this far apart are reported as one.
_CLAMP_MERGE_S = 10.0


class _ClampLog:
    """Merges nearby clamps of one rule on one zone into a single record."""

    def __init__(self, zones: tuple[str, ...]) -> None:
        self.zones = zones
        self.records: list[Clamp] = []
        self.open: dict[tuple[int, str], int] = {}

    def note(self, t: float, zone: int, rule: str, wanted: float, got: float) -> None:
        key = (zone, rule)
        at = self.open.get(key)
        if at is not None and t - self.records[at].until_s <= _CLAMP_MERGE_S:
            old = self.records[at]
            self.records[at] = replace(old, wanted=max(old.wanted, wanted),
                                       got=min(old.got, got), until_s=t)
        else:
            self.open[key] = len(self.records)
            self.records.append(Clamp(t, self.zones[zone], rule, wanted, got, t))


def apply_envelope(
    timeline: Timeline, profile: Profile, limits: SafetyLimits, *, sparing: bool = False
) -> Timeline:
    """Return a timeline that respects every limit, recording where and why it lowered values."""
    if timeline.duration_s > limits.session_max_s + _EPS:
        from controller.errors import SafetyStop

        raise SafetyStop(
            f"the program lasts {timeline.duration_s / 60:.1f} min, longer than the session cap "
            f"of {limits.session_max_s / 60:.1f} min"
        )
    caps = zone_caps(profile, limits, sparing=sparing)
    log = _ClampLog(timeline.zones)
    heat_levels = profile.heat.levels if profile.heat is not None else 0
    freq = profile.frequency
    ceiling = 0.0
    prev_t = 0.0
    heat_on_since: float | None = None
    out: list[Setpoint] = []
    end = timeline.duration_s
    for i, (t, sp) in enumerate(zip(timeline.times, timeline.setpoints, strict=True)):
        phase = timeline.phase_of[i] if timeline.phase_of else ""
        dt = t - prev_t if i else 0.0
        prev_t = t
        allowed = ceiling + limits.ramp_per_s * dt
        # The sample is held until the next one: the ramp-down cap must hold at that end too.
        t_hold_end = timeline.times[i + 1] if i + 1 < len(timeline.times) else end
        remaining = end - t_hold_end
        levels = []
        for z, wanted in enumerate(sp.levels):
            value = wanted
            rules = list(caps[z])
            if phase == "introductory":
                rules.append((limits.intro_max_intensity, "introductory-phase cap"))
            if limits.final_ramp_down_s > 0 and remaining < limits.final_ramp_down_s:
                rules.append((limits.max_intensity * remaining / limits.final_ramp_down_s,
                              "final ramp-down"))
            rules.append((allowed, "ramp rule"))
            for cap, rule in rules:
                if value > cap + _EPS:
                    if value - cap > _REPORT_MIN:
                        log.note(t, z, rule, wanted, cap)
                    value = cap
            levels.append(max(0.0, value))
        ceiling = max(ceiling, *levels) if levels else ceiling
        heat = sp.heat
        if heat is not None and heat_levels:
            heat, heat_on_since = _heat_rule(heat, t, heat_on_since, heat_levels, limits)
        elif heat_on_since is not None:
            heat_on_since = None
        frequency = sp.frequency_hz
        if frequency is not None and freq is not None:
            frequency = min(max(frequency, freq.min_hz), freq.max_hz)
        out.append(Setpoint(tuple(levels), frequency, heat, sp.mode))
    return Timeline(timeline.zones, list(timeline.times), out, end, list(timeline.markers),
                    log.records, list(timeline.notes), list(timeline.phase_of))


def _heat_rule(
    heat: float, t: float, on_since: float | None, levels: int, limits: SafetyLimits
) -> tuple[float | None, float | None]:
    """Cap heat, quantise it down to a device level, and step it down the longer it stays on."""
    if heat <= 0:
        return None, None
    since = t if on_since is None else on_since
    level = int(min(heat, limits.heat_max) * levels + _EPS)
    level -= int((t - since) // limits.heat_step_down_after_s)
    if level <= 0:
        return None, since
    return level / levels, since

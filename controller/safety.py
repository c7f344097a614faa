"""The plan-time safety envelope: caps, the ramp rule, the final ramp-down and heat rules."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from controller.timeline import Clamp, Setpoint, Timeline

if TYPE_CHECKING:
    from controller.limits import SafetyLimits
    from firmware_profiles import Profile

_EPS = 1e-9
# Clamps smaller than half a percent change nothing a person can feel; they are applied but
# not listed, so `cushion plan` shows what matters.
_REPORT_MIN = 0.005


def zone_caps(
    profile: Profile, limits: SafetyLimits, *, sparing: bool
) -> list[list[tuple[float, str]]]:
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
            if wanted - got > old.wanted - old.got:
                # Keep the largest cut, and its wish and result from that same instant: the
                # largest wish and the smallest result of a span are often moments apart.
                self.records[at] = replace(old, wanted=wanted, got=got, until_s=t, at_s=t)
            else:
                self.records[at] = replace(old, until_s=t)
        else:
            self.open[key] = len(self.records)
            self.records.append(Clamp(t, self.zones[zone], rule, wanted, got, t))


def apply_envelope(
    timeline: Timeline, profile: Profile, limits: SafetyLimits, *, sparing: bool = False
) -> Timeline:
    """Return a timeline that respects every limit, recording where and why it lowered values."""
    _check_length(timeline.duration_s, profile, limits)
    n, zones = len(timeline.times), len(timeline.zones)
    end = timeline.duration_s
    times = np.asarray(timeline.times, dtype=float)
    wanted = np.asarray([sp.levels for sp in timeline.setpoints], dtype=float).reshape(n, zones)
    # NaN compares false with every cap and would pass np.minimum unchanged: a value that is not
    # a number is a bug upstream, and the only safe reading of it is "off".
    wanted[np.isnan(wanted)] = 0.0
    # Each cap is a (samples x zones) array; applied in order, so a clamp names the first rule
    # that lowered the value.
    rules: list[tuple[str, np.ndarray]] = []
    for z, zone_rules in enumerate(zone_caps(profile, limits, sparing=sparing)):
        for cap, rule in zone_rules:
            col = np.full((n, zones), np.inf)
            col[:, z] = cap
            rules.append((rule, col))
    # The introductory cap covers the introductory phase and, whatever the phases are called,
    # the first intro_min_s of every session: a program cannot skip the gentle start by
    # calling its first phase "main" (or by making its introduction a few seconds long).
    intro = np.asarray([k == "introductory" for k in timeline.phase_of], dtype=bool)
    intro |= times < limits.intro_min_s - _EPS
    if intro.any():
        col = np.full((n, zones), np.inf)
        col[intro] = limits.intro_max_intensity
        rules.append(("introductory-phase cap", col))
    if limits.final_ramp_down_s > 0 and n:
        # The sample is held until the next one: the ramp-down cap must hold at that end too.
        hold_end = np.append(times[1:], end)
        remaining = end - hold_end
        ramp_end = np.where(
            remaining < limits.final_ramp_down_s,
            limits.max_intensity * remaining / limits.final_ramp_down_s,
            np.inf,
        )
        rules.append(("final ramp-down", np.repeat(ramp_end[:, None], zones, axis=1)))
    log = _ClampLog(timeline.zones)
    value = wanted.copy()
    for rule, limit in rules:
        _note(log, rule, times, value, limit)
        np.minimum(value, limit, out=value)
    allowed = _ramp_allowance(times, value.max(axis=1, initial=0.0), limits.ramp_per_s)
    ramp_cap = np.repeat(allowed[:, None], zones, axis=1)
    _note(log, "ramp rule", times, value, ramp_cap)
    np.minimum(value, ramp_cap, out=value)
    np.maximum(value, 0.0, out=value)
    _felt_final_stroking(timeline, profile, value, [limit for _, limit in rules] + [ramp_cap])
    log.records.sort(key=lambda c: (c.t_s, c.zone))
    out = _finish(timeline, value.tolist(), profile, limits)
    return Timeline(
        timeline.zones,
        list(timeline.times),
        out,
        end,
        list(timeline.markers),
        log.records,
        list(timeline.notes),
        list(timeline.phase_of),
    )


def _final_stroking(timeline: Timeline) -> np.ndarray:
    """Return which samples belong to a stroking step of the final phase."""
    times = np.asarray(timeline.times, dtype=float)
    mask = np.zeros(len(times), dtype=bool)
    for m in timeline.markers:
        if m.kind == "step" and m.phase == "final" and m.technique == "stroking":
            mask |= (times >= m.t_s - _EPS) & (times < m.t_s + m.duration_s - _EPS)
    return mask


def _felt_final_stroking(
    timeline: Timeline, profile: Profile, value: np.ndarray, ceilings: list[np.ndarray]
) -> None:
    """Lift the final phase's stroking to the cushion's lowest level where it would play off.

    The device rounds down, so on a coarse cushion (10 levels) a stroking fading from 10 % to
    0 is off for its whole last minute, and the massage does not end with stroking (article,
    lines 282, 385, 473). A value between off and the lowest level plays at the lowest level
    instead, but only where every limit at that instant (caps, final ramp-down, ramp rule)
    allows that level: it goes off in the last seconds, as the final ramp-down brings every
    cap under the lowest level.
    """
    mask = _final_stroking(timeline)
    if not mask.any():
        return
    lowest = 1.0 / (profile.intensity.max - profile.intensity.min)
    rows = value[mask]
    ceiling = np.minimum.reduce([c[mask] for c in ceilings])
    rows[(rows > 0.0) & (rows < lowest) & (ceiling >= lowest)] = lowest
    value[mask] = rows


def _check_length(duration_s: float, profile: Profile, limits: SafetyLimits) -> None:
    """Refuse a session longer than the cap or than the cushion's own auto-off."""
    from controller.errors import PlanError

    minutes = duration_s / 60
    if duration_s > limits.session_max_s + _EPS:
        raise PlanError(
            f"the program lasts {minutes:.1f} min, longer than the session cap of "
            f"{limits.session_max_s / 60:.1f} min.",
            key="limits.session_max_s",
            hint="Choose a shorter program (see 'cushion programs').",
        )
    auto_off = profile.limits.auto_off_s
    if auto_off is not None and duration_s > auto_off + _EPS:
        # Running on would mean switching the cushion back on after its own safety time-out.
        raise PlanError(
            f"the program lasts {minutes:.1f} min but the cushion '{profile.name}' switches "
            f"itself off after {auto_off / 60:.0f} min.",
            key="limits.auto_off_s",
            hint="Choose a program that fits, such as lumbar-short (15 min).",
        )


def _ramp_allowance(times: np.ndarray, demand: np.ndarray, rate: float) -> np.ndarray:
    """Return per sample the highest value the ramp rule allows (ceiling + rate x dt)."""
    allowed = np.empty_like(demand)
    ceiling = 0.0
    prev = float(times[0]) if len(times) else 0.0
    for i, (t, d) in enumerate(zip(times.tolist(), demand.tolist(), strict=True)):
        a = ceiling + rate * (t - prev)
        prev = t
        allowed[i] = a
        if d > ceiling:
            ceiling = d if d < a else a
    return allowed


def _note(log: _ClampLog, rule: str, times: np.ndarray, value: np.ndarray, cap: np.ndarray) -> None:
    """Record where `cap` lowers `value` by more than the reporting threshold."""
    hit = np.argwhere(value - cap > _REPORT_MIN)
    for i, z in hit.tolist():
        log.note(float(times[i]), z, rule, float(value[i, z]), float(cap[i, z]))


def _finish(
    timeline: Timeline, levels: list[list[float]], profile: Profile, limits: SafetyLimits
) -> list[Setpoint]:
    """Apply the heat and frequency rules and build the setpoints."""
    heat_levels = profile.heat.levels if profile.heat is not None else 0
    freq = profile.frequency
    heat_on_since: float | None = None
    out: list[Setpoint] = []
    for t, sp, row in zip(timeline.times, timeline.setpoints, levels, strict=True):
        heat = sp.heat
        if heat is not None and heat_levels:
            heat, heat_on_since = _heat_rule(heat, t, heat_on_since, heat_levels, limits)
        elif heat_on_since is not None:
            heat_on_since = None
        frequency = sp.frequency_hz
        if frequency is not None and freq is not None:
            frequency = min(max(frequency, freq.min_hz), freq.max_hz)
        out.append(Setpoint(tuple(row), frequency, heat, sp.mode))
    return out


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

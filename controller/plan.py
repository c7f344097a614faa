"""Compile a program for one cushion: technique patterns mapped onto the profile's zones."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from controller.timeline import Marker, Setpoint, Timeline
from protocols.patterns import render_step
from protocols.techniques import Technique
from protocols.zones import ANATOMICAL_ZONES

if TYPE_CHECKING:
    from firmware_profiles import Profile
    from protocols import Program, Step

# Finer than any pattern needs (rubbing alternates every 0.3 s) and coarse enough that a
# 40-minute plan stays a few tens of thousands of samples.
DEFAULT_RESOLUTION_S = 0.1
# On a cushion without a heater a heat step becomes stroking at this intensity (0..1), rising
# at most to WARM_UP_TOP: the article warms the tissue with stroking (line 254).
WARM_UP_START, WARM_UP_TOP = 0.10, 0.15


def resolution_for(profile: Profile) -> float:
    """Return the plan's sample spacing in seconds: 0.1 s, or slower if the device needs it."""
    return max(DEFAULT_RESOLUTION_S, 1.0 / profile.limits.max_update_hz)


def _zone_map(profile: Profile) -> tuple[list[list[int]], list[str]]:
    """Return, per device zone, the indices of the anatomical zones it covers, and notes."""
    index = {name: i for i, name in enumerate(ANATOMICAL_ZONES)}
    covered: set[str] = set()
    mapping: list[list[int]] = []
    notes: list[str] = []
    for zone in profile.zones:
        names = [n for n in ANATOMICAL_ZONES if n in zone.covers]
        covered.update(names)
        mapping.append([index[n] for n in names])
        if len(names) > 1:
            notes.append(
                f"device zone '{zone.id}' covers {', '.join(names)}: it plays the strongest "
                "of them at each moment"
            )
    missing = [n for n in ANATOMICAL_ZONES if n not in covered]
    if missing:
        notes.append(f"this cushion has no motor on {', '.join(missing)}: those parts are left out")
    return mapping, notes


def compile_program(
    program: Program, profile: Profile, *, resolution_s: float | None = None
) -> Timeline:
    """Turn a program into a timeline of per-device-zone setpoints (before the envelope)."""
    step_s = resolution_s or resolution_for(profile)
    mapping, notes = _zone_map(profile)
    zone_ids = tuple(z.id for z in profile.zones)
    anat_index = {name: i for i, name in enumerate(ANATOMICAL_ZONES)}
    times: list[float] = []
    setpoints: list[Setpoint] = []
    phase_of: list[str] = []
    markers: list[Marker] = []
    mode_notes: dict[str, str] = {}
    t0 = 0.0
    for phase in program.phases:
        markers.append(Marker(t0, "phase", phase.name, phase.kind, duration_s=phase.duration_s))
        for k, planned in enumerate(phase.steps):
            step = _playable(planned, phase.steps[k + 1 :], profile, phase.name, notes)
            markers.append(
                Marker(
                    t0,
                    "step",
                    step.technique.value,
                    phase.kind,
                    step.technique.value,
                    step.repetitions,
                    step.total_s,
                )
            )
            mode = _mode_for(profile, step, mode_notes)
            _sample_step(step, t0, step_s, mapping, anat_index, mode, profile, times, setpoints)
            phase_of.extend([phase.kind] * (len(times) - len(phase_of)))
            t0 += step.total_s
    notes.extend(mode_notes.values())
    if profile.frequency is None and any(sp.frequency_hz for sp in setpoints):
        notes.append("this cushion has no adjustable vibration frequency: frequencies are ignored")
    if profile.heat is None and any(
        s.heat for p in program.phases for s in p.steps if s.technique is not Technique.HEAT
    ):
        notes.append("this cushion has no heater: the program's warming is left out")
    return Timeline(zone_ids, times, setpoints, t0, markers, [], notes, phase_of)


def _playable(
    step: Step, following: tuple[Step, ...], profile: Profile, phase: str, notes: list[str]
) -> Step:
    """Return the step as this cushion plays it: without a heater, warming becomes stroking."""
    if step.technique is not Technique.HEAT or profile.heat is not None:
        return step
    nxt = next((s.intensity[0] for s in following if s.technique is not Technique.HEAT), None)
    top = WARM_UP_TOP if nxt is None else min(WARM_UP_TOP, nxt)
    start = min(WARM_UP_START, top)
    minutes, seconds = divmod(round(step.total_s), 60)
    level = f"at {top:.0%}" if start == top else f"from {start:.0%} to {top:.0%}"
    notes.append(
        f"this cushion has no heater: the {minutes}:{seconds:02d} of warming in phase "
        f"'{phase}' plays as gentle stroking {level} instead, as the article warms the back "
        "by stroking (line 254)"
    )
    return step.model_copy(
        update={"technique": Technique.STROKING, "intensity": (start, top), "heat": None}
    )


def _mode_for(profile: Profile, step: Step, notes: dict[str, str]) -> str | None:
    if not profile.modes:
        return None
    mode = profile.technique_modes.get(step.technique)
    if mode is None:
        mode = next(iter(profile.modes))
    notes.setdefault(
        step.technique.value,
        f"technique {step.technique.value} plays as the built-in mode '{mode}'",
    )
    return mode


def _sample_step(
    step: Step,
    t0: float,
    step_s: float,
    mapping: list[list[int]],
    anat_index: dict[str, int],
    mode: str | None,
    profile: Profile,
    times: list[float],
    setpoints: list[Setpoint],
) -> None:
    segments = render_step(step)
    count = max(1, math.ceil(step.total_s / step_s - 1e-9))
    ts = np.arange(count, dtype=float) * step_s
    # Breakpoints of the piecewise-linear pattern; at a jump np.interp takes the later piece,
    # which is the one in force from that instant on.
    xp = np.empty(2 * len(segments))
    xp[0::2] = [seg.t0_s for seg in segments]
    xp[1::2] = [seg.t1_s for seg in segments]
    anat = np.zeros((len(ANATOMICAL_ZONES), count))
    for name in step.zones:
        fp = np.empty_like(xp)
        fp[0::2] = [seg.start.get(name, 0.0) for seg in segments]
        fp[1::2] = [seg.end.get(name, 0.0) for seg in segments]
        anat[anat_index[name]] = np.interp(ts, xp, fp)
    levels = np.zeros((count, len(mapping)))
    for z, idx in enumerate(mapping):
        if idx:
            levels[:, z] = anat[idx].max(axis=0)
    frequency = step.frequency_hz if profile.frequency is not None else None
    heat = step.heat if profile.heat is not None else None
    times.extend((ts + t0).tolist())
    setpoints.extend(Setpoint(tuple(row), frequency, heat, mode) for row in levels.tolist())

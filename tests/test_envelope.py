"""The plan-time envelope: caps, the ramp rule, the final ramp-down, heat, and limit narrowing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings

from controller.errors import PlanError
from controller.limits import DEFAULT_LIMITS, SafetyLimits, narrow
from controller.plan import compile_program
from controller.runner import plan
from controller.safety import apply_envelope, zone_caps
from firmware_profiles import load_profile
from protocols import Phase, Program, Step, load_program
from tests.invariants import Ramp
from tests.strategies import programs

PROFILES = ["lp4-ascii", "vb6-binary", "remote-stepper"]


def _flat(
    level: float,
    seconds: float = 120,
    zones: tuple[str, ...] = ("all",),
    kind: str = "main",
    sparing: bool = False,
) -> Program:
    step = Step(
        technique="vibration-continuous", zones=zones, duration_s=seconds, intensity=(level, level)
    )
    final = Step(technique="stroking", zones=("all",), duration_s=30, intensity=(0.1, 0.0))
    return Program(
        name="flat",
        title="Flat",
        sparing=sparing,
        phases=(
            Phase(name="p", kind=kind, steps=(step,)),
            Phase(name="f", kind="final", steps=(final,)),
        ),
    )


def _check(timeline, profile, limits, sparing=False):  # type: ignore[no-untyped-def]
    caps = [min(c for c, _ in rules) for rules in zone_caps(profile, limits, sparing=sparing)]
    for i, sp in enumerate(timeline.setpoints):
        for z, value in enumerate(sp.levels):
            assert 0 <= value <= caps[z] + 1e-9, (timeline.times[i], z, value, caps[z])
            if timeline.phase_of[i] == "introductory":
                assert value <= limits.intro_max_intensity + 1e-9
    points = [(t, max(sp.levels)) for t, sp in zip(timeline.times, timeline.setpoints, strict=True)]
    assert Ramp(limits.ramp_per_s, 0.0).check(points) == []
    assert (
        max(timeline.setpoints[-1].levels)
        <= limits.max_intensity * 0.1 / limits.final_ramp_down_s + 1e-9
    )


@pytest.mark.parametrize("profile_name", PROFILES)
@pytest.mark.parametrize(
    "program_name",
    ["lumbar-classic", "lumbar-osteochondrosis", "radiculitis-gentle", "lumbar-short"],
)
def test_builtin_plans_respect_every_limit(program_name: str, profile_name: str) -> None:
    program, profile = load_program(program_name), load_profile(profile_name)
    if profile.limits.auto_off_s and program.duration_s > profile.limits.auto_off_s:
        with pytest.raises(PlanError, match="switches itself off after 15 min"):
            plan(program, profile, DEFAULT_LIMITS)
        return
    timeline = plan(program, profile, DEFAULT_LIMITS)
    assert timeline.duration_s == pytest.approx(program.duration_s)
    _check(timeline, profile, DEFAULT_LIMITS, program.sparing)


@settings(max_examples=30, deadline=None)
@given(program=programs())
def test_arbitrary_programs_are_made_safe(program: Program) -> None:
    for name in PROFILES:
        profile = load_profile(name)
        _check(plan(program, profile, DEFAULT_LIMITS), profile, DEFAULT_LIMITS, program.sparing)


def test_ramp_rule_climbs_ten_percent_per_five_seconds() -> None:
    profile = load_profile("vb6-binary")
    # Without the introductory window, so only the ramp rule and the overall cap apply.
    timeline = plan(_flat(0.8), profile, SafetyLimits(intro_min_s=0))
    at = {
        round(t, 1): max(sp.levels)
        for t, sp in zip(timeline.times, timeline.setpoints, strict=True)
    }
    assert at[5.0] == pytest.approx(0.10, abs=0.003)
    assert at[20.0] == pytest.approx(0.40, abs=0.003)
    assert at[40.0] == pytest.approx(0.80, abs=0.003)  # reaches the 80 % overall cap
    assert any(c.rule == "ramp rule" for c in timeline.clamps)


def test_patterns_modulate_freely_below_the_ceiling() -> None:
    # Rubbing alternates sides; once the ceiling is up, a side may switch on at once.
    profile = load_profile("vb6-binary")
    step = Step(technique="rubbing", zones=("paravertebral",), duration_s=120, intensity=(0.5, 0.5))
    final = Step(technique="stroking", zones=("all",), duration_s=30, intensity=(0.1, 0.0))
    program = Program(
        name="rub",
        title="Rub",
        phases=(
            Phase(name="m", kind="main", steps=(step,)),
            Phase(name="f", kind="final", steps=(final,)),
        ),
    )
    timeline = plan(program, profile, DEFAULT_LIMITS)
    left = [
        sp.levels[0]
        for t, sp in zip(timeline.times, timeline.setpoints, strict=True)
        if 60 < t < 90
    ]
    jumps = [b - a for a, b in itertools.pairwise(left)]
    # Rises above 0.05 in one 0.1 s sample (25x the ramp rate) are allowed below the ceiling.
    assert max(jumps) > 0.05


def test_kidney_zones_are_capped() -> None:
    profile = load_profile("lp4-ascii")
    kidney = [i for i, z in enumerate(profile.zones) if z.kidney]
    assert kidney
    timeline = plan(_flat(0.7, 300), profile, DEFAULT_LIMITS)
    assert max(sp.levels[kidney[0]] for sp in timeline.setpoints) == pytest.approx(
        DEFAULT_LIMITS.kidney_max_intensity
    )
    assert any(c.rule == "kidney-zone cap" for c in timeline.clamps)


def test_introductory_phase_and_sparing_caps() -> None:
    profile = load_profile("vb6-binary")
    intro = plan(_flat(0.9, 300, kind="introductory"), profile, DEFAULT_LIMITS)
    assert intro.peak() == pytest.approx(DEFAULT_LIMITS.intro_max_intensity)
    sparing = plan(_flat(0.9, 300, sparing=True), profile, DEFAULT_LIMITS)
    assert sparing.peak() == pytest.approx(DEFAULT_LIMITS.sparing_max_intensity)


def test_final_ramp_down_reaches_zero_linearly() -> None:
    profile = load_profile("vb6-binary")
    limits = DEFAULT_LIMITS
    # No final phase: the envelope still brings the last minute down to zero.
    step = Step(
        technique="vibration-continuous", zones=("all",), duration_s=300, intensity=(0.6, 0.6)
    )
    program = Program(
        name="nofinal", title="No final", phases=(Phase(name="m", kind="main", steps=(step,)),)
    )
    timeline = plan(program, profile, limits)
    for t, sp in zip(timeline.times, timeline.setpoints, strict=True):
        hold_end = min(t + 0.1, timeline.duration_s)
        assert (
            max(sp.levels)
            <= limits.max_intensity * (timeline.duration_s - hold_end) / limits.final_ramp_down_s
            + 1e-9
            or t < 240
        )


def test_session_longer_than_the_cap_is_refused() -> None:
    profile = load_profile("lp4-ascii")
    raw = compile_program(_flat(0.3, 600), profile)
    with pytest.raises(PlanError, match="longer than the session cap"):
        apply_envelope(raw, profile, narrow(DEFAULT_LIMITS, {"session_max_s": 300}))


def test_heat_is_capped_and_steps_down() -> None:
    profile = load_profile("lp4-ascii")
    assert profile.heat is not None
    step = Step(technique="heat", zones=("back",), duration_s=1300, intensity=(0, 0), heat=1.0)
    final = Step(technique="stroking", zones=("all",), duration_s=30, intensity=(0.1, 0.0))
    program = Program(
        name="h",
        title="H",
        phases=(
            Phase(name="m", kind="main", steps=(step,)),
            Phase(name="f", kind="final", steps=(final,)),
        ),
    )
    timeline = plan(program, profile, DEFAULT_LIMITS)
    heats = [sp.heat or 0.0 for sp in timeline.setpoints]
    assert max(heats) <= DEFAULT_LIMITS.heat_max + 1e-9
    early = heats[timeline.index_at(10)]
    late = heats[timeline.index_at(1250)]
    assert late < early


def test_limits_narrow_but_never_loosen_silently() -> None:
    lower = narrow(DEFAULT_LIMITS, {"max_intensity": 0.5})
    assert lower.max_intensity == 0.5
    with pytest.raises(ValueError, match="loosen"):
        narrow(DEFAULT_LIMITS, {"max_intensity": 0.9})
    assert narrow(DEFAULT_LIMITS, {"max_intensity": 0.9}, allow_raise=True).max_intensity == 0.9
    with pytest.raises(ValueError, match="may not exceed"):
        narrow(DEFAULT_LIMITS, {"ramp_per_s": 0.5}, allow_raise=True)
    with pytest.raises(ValueError, match="only be made longer"):
        narrow(DEFAULT_LIMITS, {"final_ramp_down_s": 10})
    longer = narrow(DEFAULT_LIMITS, {"final_ramp_down_s": 90})
    with pytest.raises(ValueError, match="loosen"):
        narrow(longer, {"final_ramp_down_s": 70})
    assert narrow(longer, {"final_ramp_down_s": 70}, allow_raise=True).final_ramp_down_s == 70
    assert SafetyLimits().ramp_per_s == 0.02

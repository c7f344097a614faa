"""Technique patterns: invariants for any step (hypothesis) and each technique's character."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import PatternSegment, Step, Technique, render_step
from protocols.patterns import DEFAULT_RATE_HZ, FLOOR
from protocols.zones import ANATOMICAL_ZONES, ZONE_GROUPS

EPS = 1e-9


def make(technique: Technique, zones: tuple[str, ...] = ("back",), duration_s: float = 60.0,
         repetitions: int = 1, intensity: tuple[float, float] = (0.5, 0.5),
         **extra: object) -> Step:
    fields: dict[str, object] = {
        "technique": technique, "zones": zones, "duration_s": duration_s,
        "repetitions": repetitions, **extra,
    }
    if technique is Technique.HEAT:
        fields["heat"] = 0.5
    else:
        fields["intensity"] = intensity
    return Step.model_validate(fields)


@st.composite
def steps(draw: st.DrawFn) -> Step:
    technique = draw(st.sampled_from(list(Technique)))
    names = draw(st.lists(st.sampled_from([*ANATOMICAL_ZONES, *ZONE_GROUPS]), min_size=1,
                          max_size=4))
    level = st.floats(0.0, 1.0, allow_nan=False)
    tempo = st.none() | st.floats(0.05, 10.0)
    return make(
        technique,
        zones=tuple(names),
        duration_s=draw(st.floats(0.2, 60.0)),
        repetitions=draw(st.integers(1, 3)),
        intensity=(draw(level), draw(level)),
        tempo_hz=draw(tempo),
        direction=draw(st.sampled_from(["top-down", "bottom-up", "none"])),
    )


@settings(max_examples=150, deadline=None)
@given(steps())
def test_segments_cover_the_step_contiguously(step: Step) -> None:
    segs = render_step(step)
    assert segs[0].t0_s == 0.0
    assert segs[-1].t1_s == step.total_s
    for seg in segs:
        assert seg.t1_s > seg.t0_s
    for a, b in itertools.pairwise(segs):
        assert a.t1_s == b.t0_s


@settings(max_examples=150, deadline=None)
@given(steps())
def test_values_stay_between_zero_and_the_amplitude(step: Step) -> None:
    for seg in render_step(step):
        assert set(seg.start) == set(step.zones) == set(seg.end)
        mid = (seg.t0_s + seg.t1_s) / 2
        for zone in step.zones:
            for t, value in ((seg.t0_s, seg.start[zone]), (seg.t1_s, seg.end[zone]),
                             (mid, seg.value(zone, mid))):
                assert math.isfinite(value)
                assert 0.0 <= value <= step.amplitude(t) + EPS


@settings(max_examples=200, deadline=None)
@given(steps())
def test_segment_count_stays_reasonable(step: Step) -> None:
    rate = step.tempo_hz or DEFAULT_RATE_HZ[step.technique]
    # At most 8 pieces a cycle, plus a partial piece and a sliver per repetition.
    assert len(render_step(step)) <= step.total_s * rate * 8 + 2 * step.repetitions


def peaks(segs: list[PatternSegment], zone: str, amplitude: float) -> list[float]:
    """Times where `zone` touches the amplitude (pattern peaks)."""
    return [s.t0_s for s in segs if abs(s.start[zone] - amplitude) < 1e-9]


def test_rubbing_alternates_left_right_about_100_times_a_minute() -> None:
    segs = render_step(make(Technique.RUBBING, zones=("paravertebral",), duration_s=60.0))
    left = peaks(segs, "paravertebral_left", 0.5)
    right = peaks(segs, "paravertebral_right", 0.5)
    assert len(left) + len(right) in (99, 100)  # 100/min, the article's line 149
    merged = sorted([(t, "L") for t in left] + [(t, "R") for t in right])
    assert all(a[1] != b[1] for a, b in itertools.pairwise(merged))
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(merged)]
    assert all(abs(g - 60 / 100) < 1e-6 for g in gaps)


def test_rubbing_tempo_override() -> None:
    segs = render_step(make(Technique.RUBBING, zones=("gluteal",), duration_s=60.0,
                            tempo_hz=1.0))
    total = len(peaks(segs, "gluteal_left", 0.5)) + len(peaks(segs, "gluteal_right", 0.5))
    assert total == 60


def test_rubbing_a_zone_without_side_still_alternates() -> None:
    segs = render_step(make(Technique.RUBBING, zones=("lumbosacral",), duration_s=6.0))
    tops = peaks(segs, "lumbosacral", 0.5)
    assert len(tops) == 5  # every other movement of 10, the rest at the floor
    assert min(s.start["lumbosacral"] for s in segs) == FLOOR * 0.5


def first_peak(step: Step, zone: str) -> float:
    segs = render_step(step)
    top = max(s.start[zone] for s in segs)
    return next(s.t0_s for s in segs if s.start[zone] == top)


def test_stroking_travels_top_down_and_reverses_bottom_up() -> None:
    down = make(Technique.STROKING, zones=("back",), duration_s=12.0)
    up = make(Technique.STROKING, zones=("back",), duration_s=12.0, direction="bottom-up")
    assert first_peak(down, "paravertebral_left") < first_peak(down, "lumbosacral")
    assert first_peak(up, "lumbosacral") < first_peak(up, "paravertebral_left")
    # Left and right at the same level move together.
    assert first_peak(down, "paravertebral_left") == first_peak(down, "paravertebral_right")


def test_stroking_period_is_six_seconds() -> None:
    segs = render_step(make(Technique.STROKING, zones=("gluteal",), duration_s=60.0))
    assert len(peaks(segs, "gluteal_left", 0.5)) == 10


def test_squeezing_pulses_one_row_at_a_time_top_down() -> None:
    step = make(Technique.SQUEEZING, zones=("paravertebral", "lumbosacral", "gluteal"),
                duration_s=7.5)
    segs = render_step(step)
    order = [next(s.t0_s for s in segs if s.start[z] == 0.5)
             for z in ("paravertebral_left", "lumbosacral", "gluteal_left")]
    assert order == sorted(order)
    assert abs(order[1] - order[0] - 2.5) < 1e-9  # 0.4 Hz pulses
    for s in segs:
        busy = [z for z in step.zones if s.start[z] > FLOOR * 0.5 + EPS]
        assert len({z.removesuffix("_left").removesuffix("_right") for z in busy}) <= 1


def test_kneading_rows_overlap() -> None:
    segs = render_step(make(Technique.KNEADING, zones=("back",), duration_s=8.0))
    both_high = [s for s in segs
                 if min(s.start["paravertebral_left"], s.start["lumbosacral"]) > 0.3]
    assert both_high


def test_modulating_patterns_never_drop_below_the_floor() -> None:
    for technique in (Technique.STROKING, Technique.SQUEEZING, Technique.RUBBING,
                      Technique.KNEADING, Technique.SHAKING, Technique.VIBRATION_INTERMITTENT,
                      Technique.ACUPRESSURE):
        for seg in render_step(make(technique, duration_s=30.0)):
            assert min(seg.start.values()) >= FLOOR * 0.5 - EPS, technique
            assert max(seg.start.values()) <= 0.5


def test_intermittent_vibration_bursts_five_times_a_second() -> None:
    segs = render_step(make(Technique.VIBRATION_INTERMITTENT, zones=("lumbosacral",),
                            duration_s=2.0))
    on = [s for s in segs if s.start["lumbosacral"] == 0.5]
    assert len(on) == 10
    assert all(s.start == s.end for s in segs)  # constant (intensity is constant)


def test_continuous_vibration_follows_the_amplitude() -> None:
    step = make(Technique.VIBRATION_CONTINUOUS, zones=("lumbosacral",), duration_s=30.0,
                repetitions=2, intensity=(0.3, 0.6))
    segs = render_step(step)
    assert len(segs) == 2
    assert segs[0].start["lumbosacral"] == 0.3
    assert segs[-1].end["lumbosacral"] == step.amplitude(step.total_s)


def test_acupressure_holds_rise_in_steps_of_five_to_ten_seconds() -> None:
    step = make(Technique.ACUPRESSURE, zones=("paravertebral",), duration_s=40.0,
                repetitions=2)
    assert step.direction == "none"
    segs = render_step(step)
    assert len(segs) == 10
    first = [s.start["paravertebral_left"] for s in segs[:5]]
    assert first == sorted(first) and first[0] < first[-1] == 0.5
    assert all(5.0 <= s.t1_s - s.t0_s <= 10.0 for s in segs)
    assert all(s.start == s.end for s in segs)


def test_heat_keeps_motors_off() -> None:
    segs = render_step(make(Technique.HEAT, duration_s=120.0))
    assert all(v == 0.0 for s in segs for v in (*s.start.values(), *s.end.values()))


def test_a_rising_step_starts_low_and_ends_at_its_target() -> None:
    step = make(Technique.SHAKING, zones=("lumbosacral",), duration_s=20.0,
                intensity=(0.1, 0.8))
    segs = render_step(step)
    assert max(s.start["lumbosacral"] for s in segs[:8]) <= 0.1 + 0.7 * 8 / 20 * 1.0
    assert max(s.end["lumbosacral"] for s in segs[-8:]) > 0.7

"""Built-in programs: they load, last what they say, follow the article's shape and wording."""

from __future__ import annotations

import itertools
import re

import pytest

from protocols import Program, Technique, builtin_programs, load_program, program_segments
from protocols.limits import FINAL_END_MAX

NAMES = ["lumbar-classic", "lumbar-osteochondrosis", "lumbar-short", "radiculitis-gentle"]


@pytest.fixture(params=NAMES)
def program(request: pytest.FixtureRequest) -> Program:
    return load_program(request.param)


def test_the_four_builtins_are_there() -> None:
    assert sorted(builtin_programs()) == NAMES


def test_name_matches_file(program: Program) -> None:
    assert builtin_programs()[program.name].stem == program.name


@pytest.mark.parametrize(
    ("name", "low_min", "high_min"),
    [
        ("lumbar-classic", 25.0, 27.0),
        ("lumbar-osteochondrosis", 20.0, 25.0),
        ("radiculitis-gentle", 20.0, 25.0),
        ("lumbar-short", 15.0, 15.0),
    ],
)
def test_durations(name: str, low_min: float, high_min: float) -> None:
    program = load_program(name)
    assert low_min * 60 <= program.duration_s <= high_min * 60


def test_three_phases_in_order_with_a_short_introduction(program: Program) -> None:
    assert [p.kind for p in program.phases] == ["introductory", "main", "final"]
    assert 120 <= program.phases[0].duration_s <= 180  # article, line 130: about 3 min
    assert program.phases[-1].duration_s >= 120


def test_lumbar_classic_follows_the_worked_outline() -> None:
    program = load_program("lumbar-classic")
    intro, main, final = program.phases
    assert intro.duration_s == 180 and final.duration_s == 180
    assert 19 * 60 <= main.duration_s <= 21 * 60
    assert main.steps[0].zones == ("gluteal_left", "gluteal_right")  # glutes first
    order = [s.technique for s in main.steps]
    wanted = [Technique.STROKING, Technique.SQUEEZING, Technique.RUBBING, Technique.KNEADING,
              Technique.VIBRATION_CONTINUOUS, Technique.SHAKING, Technique.STROKING]
    it = iter(order)
    assert all(t in it for t in wanted)  # classic order is a subsequence
    rubbing = next(s for s in main.steps if s.technique is Technique.RUBBING)
    assert rubbing.tempo_hz is not None and abs(rubbing.tempo_hz * 60 - 100) < 1
    assert all(s.direction == "top-down" for p in program.phases for s in p.steps)
    assert all(2 <= s.repetitions <= 3 for s in main.steps
               if s.technique not in (Technique.STROKING, Technique.SHAKING))


def test_final_phase_falls_to_the_end(program: Program) -> None:
    final = program.phases[-1]
    segs = [s for s in program_segments(program) if s.phase is final]
    step_start = {s.step_index: s.t0_s for s in reversed(segs)}
    ceilings = [s.step.amplitude(s.t0_s - step_start[s.step_index]) for s in segs]
    assert len(ceilings) > 10
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(ceilings))
    assert final.steps[-1].intensity[1] <= FINAL_END_MAX
    assert all(v == 0.0 for v in segs[-1].end.values())


def test_start_is_gentle(program: Program) -> None:
    first = program.phases[0].steps[0]
    assert first.intensity[0] <= 0.2 or first.technique is Technique.HEAT
    if program.name != "lumbar-short":
        assert program.notes() == []


def test_short_program_says_the_article_wants_longer() -> None:
    program = load_program("lumbar-short")
    assert "20-40" in program.summary
    assert any("20-40" in note for note in program.notes())


def test_sparing_programs_stay_low() -> None:
    for name in ("lumbar-osteochondrosis", "radiculitis-gentle"):
        program = load_program(name)
        assert program.sparing
        peak = max(max(s.intensity) for p in program.phases for s in p.steps)
        assert peak <= 0.45
    classic = load_program("lumbar-classic")
    assert not classic.sparing


def test_radiculitis_heats_first_and_never_taps() -> None:
    program = load_program("radiculitis-gentle")
    steps = [s for p in program.phases for s in p.steps]
    assert steps[0].technique is Technique.HEAT and steps[0].heat
    assert Technique.VIBRATION_INTERMITTENT in program.avoid
    assert all(s.technique is not Technique.VIBRATION_INTERMITTENT for s in steps)
    assert any(s.technique is Technique.VIBRATION_CONTINUOUS for s in steps)
    paravertebral = [s for s in steps if s.technique in (Technique.RUBBING,
                                                         Technique.ACUPRESSURE)
                     and s.zones == ("paravertebral_left", "paravertebral_right")]
    assert paravertebral and all(max(s.intensity) <= 0.3 for s in paravertebral)


def test_every_program_cites_the_article(program: Program) -> None:
    assert program.sources and all("000_59a397fc260355a6" in s for s in program.sources)
    assert all(re.search(r"\d", s.cite) for p in program.phases for s in p.steps)
    assert program.contraindications
    assert "acute_pain" in program.screening_keys


def test_wording_is_factual(program: Program) -> None:
    text = f"{program.title} {program.summary}".lower()
    assert "modelled on" in text or "form of" in text
    assert not re.search(r"\b(cure|cures|heals|treats|guarantee)", text)
    assert "not a treatment" in text


def test_heat_programs_warn_about_reduced_sensation() -> None:
    for name in NAMES:
        program = load_program(name)
        heats = any(s.heat for p in program.phases for s in p.steps)
        warned = "reduced_sensation" in program.screening_keys
        assert heats == warned, name

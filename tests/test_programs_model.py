"""The program model in Python: quantities, construction-time checks, notes, schema, timeline."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from protocols import (
    Phase,
    Program,
    Step,
    Technique,
    load_program,
    program_json_schema,
    program_segments,
)
from protocols.quantities import parse_duration, parse_intensity


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(40, 40.0), (2.5, 2.5), ("40s", 40.0), ("2min", 120.0), ("1:30", 90.0), ("0:05", 5.0)],
)
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1:60", "-3", 0, -1, True, "ten", "1h"])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_intensities_parse() -> None:
    assert parse_intensity("25%") == (0.25, 0.25)
    assert parse_intensity([0.1, "30%"]) == (0.1, 0.3)
    assert parse_intensity(["40%"]) == (0.4, 0.4)
    for bad in (1.5, "120%", [0.1, 0.2, 0.3], "high", -0.1):
        with pytest.raises(ValueError):
            parse_intensity(bad)


def stroking(intensity: tuple[float, float] = (0.2, 0.3), minutes: float = 1.0) -> Step:
    return Step(technique=Technique.STROKING, zones=("back",), duration_s=minutes * 60,
                intensity=intensity)


def test_python_construction_expands_zones_and_checks_safety() -> None:
    step = stroking()
    assert step.zones == ("paravertebral_left", "paravertebral_right", "lumbosacral")
    main = Phase(name="Main", kind="main", steps=(step,))
    final = Phase(name="End", kind="final", steps=(stroking((0.3, 0.0)),))
    program = Program(name="p", title="P", phases=(main, final))
    assert program.duration_s == 120
    with pytest.raises(ValidationError, match="avoid list"):
        Program(name="p", title="P", avoid=(Technique.STROKING,), phases=(main, final))
    with pytest.raises(ValidationError, match="cannot follow"):
        Program(name="p", title="P", phases=(final, main))


def test_steps_are_frozen() -> None:
    step = stroking()
    with pytest.raises(ValidationError):
        step.repetitions = 3  # type: ignore[misc]


def test_notes_warn_without_refusing() -> None:
    main = Phase(name="Main", kind="main",
                 steps=(stroking((0.5, 0.5)),
                        Step(technique=Technique.KNEADING, zones=("lumbosacral",),
                             duration_s=30, intensity=(0.5, 0.5), direction="bottom-up")))
    notes = Program(name="p", title="P", phases=(main,)).notes()
    assert len(notes) == 7
    assert any("20-40" in n for n in notes)
    assert any("main phase lasts 1:30" in n for n in notes)
    assert any("step 2 (kneading): done once" in n for n in notes)
    assert any("completes every massage with stroking" in n for n in notes)
    assert any("final" in n for n in notes)
    assert any("minimal intensity" in n for n in notes)
    assert any("bottom-up" in n for n in notes)


def test_amplitude_is_linear_over_the_whole_step() -> None:
    step = Step(technique=Technique.SHAKING, zones=("back",), duration_s=30, repetitions=2,
                intensity=(0.2, 0.6))
    assert step.total_s == 60
    assert step.amplitude(0) == 0.2
    assert step.amplitude(30) == pytest.approx(0.4)
    assert step.amplitude(60) == pytest.approx(0.6)
    assert step.amplitude(99) == pytest.approx(0.6)


def test_json_schema_describes_the_file_shape() -> None:
    schema = program_json_schema()
    assert set(schema["properties"]) == {"program", "phase"}
    step = schema["$defs"]["Step"]["properties"]
    assert {"technique", "zones", "duration", "intensity", "tempo_hz", "heat"} <= set(step)
    assert {"type": "string"} in step["duration"]["anyOf"]
    assert "kneading" in schema["$defs"]["Technique"]["enum"]


def test_program_segments_cover_a_whole_program_with_markers() -> None:
    program = load_program("lumbar-classic")
    segs = program_segments(program)
    assert segs[0].t0_s == 0.0
    assert segs[-1].t1_s == pytest.approx(program.duration_s, abs=1e-9)
    assert all(a.t1_s == b.t0_s for a, b in itertools.pairwise(segs))
    assert len(segs) <= 20_000
    for p, phase in enumerate(program.phases):
        for s, step in enumerate(phase.steps):
            mine = [x for x in segs if (x.phase_index, x.step_index) == (p, s)]
            assert all(x.step is step and x.phase is phase for x in mine)
            reps = [x.repetition for x in mine]
            assert reps == sorted(reps) and set(reps) == set(range(step.repetitions))
            for r in range(step.repetitions):
                first = next(x for x in mine if x.repetition == r)
                assert first.t0_s == pytest.approx(mine[0].t0_s + r * step.duration_s)


def test_the_documented_example_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).parent.parent / "docs" / "programs.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", doc, re.S)
    assert block is not None
    path = tmp_path / "example.toml"
    path.write_text(block.group(1), encoding="utf-8")
    program = load_program(path)
    assert program.duration_s == 7 * 60 + 18  # the total the page states
    assert [w.rule for w in program.rule_warnings()] == [
        "session-length", "phase-length", "phase-length"  # the warnings the page states
    ]
    assert len(program.notes()) == 3


def test_programs_round_trip_through_json() -> None:
    for name in ("lumbar-classic", "radiculitis-gentle"):
        program = load_program(name)
        assert Program.model_validate_json(program.model_dump_json()) == program

"""Loader errors: every bad program is refused naming the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocols import ProgramError, load_program

HEAD = """\
[program]
name = "t"
title = "Test program"
"""

STEP = """\
[[phase.step]]
technique = "{technique}"
zones = {zones}
duration = "{duration}"
repetitions = {repetitions}
intensity = {intensity}
"""


def phase(kind: str, *steps: str) -> str:
    return f'\n[[phase]]\nname = "{kind.title()}"\nkind = "{kind}"\n\n' + "\n".join(steps)


def step(
    technique: str = "stroking",
    zones: str = '["back"]',
    duration: str = "1:00",
    repetitions: int = 1,
    intensity: str = '["20%", "30%"]',
) -> str:
    return STEP.format(technique=technique, zones=zones, duration=duration,
                       repetitions=repetitions, intensity=intensity)


def final(start: str = "30%", end: str = "0%") -> str:
    return phase("final", step(intensity=f'["{start}", "{end}"]'))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prog.toml"
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str, nth: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def refused(tmp_path: Path, text: str) -> ProgramError:
    path = write(tmp_path, text)
    with pytest.raises(ProgramError) as info:
        load_program(path)
    assert info.value.file == str(path)
    assert str(path) in str(info.value)
    return info.value


def test_a_good_file_loads(tmp_path: Path) -> None:
    text = HEAD + phase("main", step(), step("kneading", duration="40s", repetitions=3)) + final()
    program = load_program(write(tmp_path, text))
    assert program.duration_s == 60 + 120 + 60
    assert program.phases[0].steps[1].intensity == (0.2, 0.3)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = HEAD + phase("main", step()).replace('duration = "1:00"', "duration = 1:00:")
    err = refused(tmp_path, text)
    assert err.line == line_of(text, "duration = 1:00:")
    assert "not valid TOML" in err.message


def test_unknown_technique_lists_the_valid_ones(tmp_path: Path) -> None:
    text = HEAD + phase("main", step(), step("tapping")) + final()
    err = refused(tmp_path, text)
    assert err.key == "phase.0.step.1.technique"
    assert err.line == line_of(text, 'technique = "tapping"')
    assert "vibration-intermittent" in err.message and "kneading" in err.message


def test_unknown_zone_lists_the_valid_ones(tmp_path: Path) -> None:
    text = HEAD + phase("main", step(zones='["back", "neck"]')) + final()
    err = refused(tmp_path, text)
    assert err.key == "phase.0.step.0.zones"
    assert err.line == line_of(text, '"neck"')
    assert "'neck'" in err.message and "lumbosacral" in err.message


def test_intensity_above_one_is_refused(tmp_path: Path) -> None:
    text = HEAD + phase("main", step(intensity='["20%", "150%"]')) + final()
    err = refused(tmp_path, text)
    assert err.key == "phase.0.step.0.intensity"
    assert err.line == line_of(text, '"150%"')
    assert "0..1" in err.message


def test_unreadable_duration_says_which_forms_work(tmp_path: Path) -> None:
    text = HEAD + phase("main", step(), step(duration="1:75")) + final()
    err = refused(tmp_path, text)
    assert err.key == "phase.0.step.1.duration"
    assert err.line == line_of(text, '"1:75"')
    assert "m:ss" in err.message


def test_too_many_repetitions(tmp_path: Path) -> None:
    text = HEAD + phase("main", step(repetitions=11)) + final()
    err = refused(tmp_path, text)
    assert err.key == "phase.0.step.0.repetitions"
    assert err.line == line_of(text, "repetitions = 11")


def test_misspelt_key_is_refused(tmp_path: Path) -> None:
    text = HEAD + phase("main", step().replace("intensity =", "intesity =")) + final()
    err = refused(tmp_path, text)
    assert err.key == "phase.0.step.0.intesity"
    assert err.line == line_of(text, "intesity =")


def test_program_longer_than_40_minutes_names_total_and_limit(tmp_path: Path) -> None:
    long_main = phase("main", step(duration="10:00", repetitions=3), step(duration="11:00"))
    text = HEAD + phase("introductory", step()) + long_main + final()
    err = refused(tmp_path, text)
    assert err.key == "phase.1"
    assert err.line == line_of(text, "[[phase]]", nth=2)
    assert "43:00" in err.message and "40:00" in err.message


def test_final_phase_before_main_is_refused(tmp_path: Path) -> None:
    text = HEAD + final() + phase("main", step())
    err = refused(tmp_path, text)
    assert err.key == "phase.1.kind"
    assert err.line == line_of(text, 'kind = "main"')


def test_rising_final_phase_is_refused(tmp_path: Path) -> None:
    text = HEAD + phase("main", step()) + final("10%", "30%")
    err = refused(tmp_path, text)
    assert err.key == "phase.1.step.0.intensity"
    assert err.line == line_of(text, '["10%", "30%"]')
    assert "fall" in err.message


def test_final_phase_must_end_low(tmp_path: Path) -> None:
    text = HEAD + phase("main", step()) + final("40%", "30%")
    err = refused(tmp_path, text)
    assert err.key == "phase.1.step.0.intensity"
    assert "end low" in err.message


def test_avoided_technique_is_refused_where_it_appears(tmp_path: Path) -> None:
    head = HEAD + 'avoid = ["vibration-intermittent"]\n'
    text = head + phase("main", step(), step("vibration-intermittent")) + final()
    err = refused(tmp_path, text)
    assert err.key == "phase.0.step.1.technique"
    assert err.line == line_of(text, 'technique = "vibration-intermittent"')
    assert "avoid" in err.message


def test_heat_step_without_heat_points_at_the_step(tmp_path: Path) -> None:
    heat_step = '[[phase.step]]\ntechnique = "heat"\nzones = ["back"]\nduration = "2:00"\n'
    text = HEAD + phase("introductory", heat_step) + phase("main", step()) + final()
    err = refused(tmp_path, text)
    assert err.key == "phase.0.step.0.heat"
    assert err.line == line_of(text, "[[phase.step]]")


def test_motor_step_without_intensity_is_refused(tmp_path: Path) -> None:
    no_intensity = step().replace('intensity = ["20%", "30%"]\n', "")
    text = HEAD + phase("main", step(), no_intensity) + final()
    err = refused(tmp_path, text)
    assert err.key == "phase.0.step.1.intensity"
    assert err.line == line_of(text, "[[phase.step]]", nth=2)


def test_program_without_phases_is_refused(tmp_path: Path) -> None:
    err = refused(tmp_path, HEAD)
    assert err.key == "phase"


def test_bad_program_name_points_at_program_table(tmp_path: Path) -> None:
    text = HEAD.replace('name = "t"', 'name = "Bad Name"') + phase("main", step()) + final()
    err = refused(tmp_path, text)
    assert err.key == "program.name"
    assert err.line == 2


def test_missing_file_is_a_program_error(tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match="cannot read"):
        load_program(tmp_path / "nope.toml")


def test_unknown_builtin_name_lists_the_builtins() -> None:
    with pytest.raises(ProgramError) as info:
        load_program("lumbar-deluxe")
    assert "lumbar-classic" in str(info.value)

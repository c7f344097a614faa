"""Validation at every boundary: each bad input found by review and fuzzing, refused clearly.

Every refusal is an InputError (the CLI prints one paragraph and exits 2) that names the
file, the line and the key, and says what to change.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from controller.checks import check_profile
from controller.config import load_config
from controller.errors import ConfigError
from controller.limits import DEFAULT_LIMITS, LimitError, SafetyLimits, narrow
from controller.runner import plan
from controller.safety import apply_envelope
from controller.timeline import Setpoint, Timeline
from firmware_profiles import ProfileError, builtin_profiles, load_profile
from protocols import Phase, Program, Step, builtin_programs, load_program
from protocols.errors import InputError, ProgramError

LP4 = builtin_profiles()["lp4-ascii"].read_text()
VB6 = builtin_profiles()["vb6-binary"].read_text()
STEPPER = builtin_profiles()["remote-stepper"].read_text()
SHORT = builtin_programs()["lumbar-short"].read_text()


def _write(tmp_path: Path, text: str | bytes, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _edit(base: str, old: str, new: str) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def refuse_profile(tmp_path: Path, base: str, old: str, new: str) -> ProfileError:
    """Load base with one edit; return the error, which must name the file and a line."""
    path = _write(tmp_path, _edit(base, old, new))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.file == str(path) and info.value.line is not None, info.value
    return info.value


# -- 1. non-finite numbers, in every file -----------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("lease_s = 1.5", "lease_s = inf", "limits.lease_s"),
        ("reply_timeout_s = 0.3", "reply_timeout_s = inf", "limits.reply_timeout_s"),
        ("watchdog_s = 2.0", "watchdog_s = inf", "limits.watchdog_s"),
        ("max_update_hz = 20", "max_update_hz = inf", "limits.max_update_hz"),
        ("max_update_hz = 20", "max_update_hz = nan", "limits.max_update_hz"),
        ("auto_off_s = 1800", "auto_off_s = inf", "limits.auto_off_s"),
        ("stopbits = 1", "stopbits = nan", "serial.stopbits"),
        ("{ raw = 5, hz = 40.0 }", "{ raw = 5, hz = inf }", "frequency.table.4.hz"),
    ],
)
def test_profiles_refuse_non_finite_numbers(tmp_path: Path, old: str, new: str, key: str) -> None:
    err = refuse_profile(tmp_path, LP4, old, new)
    assert err.key == key
    assert err.line == _line_of(_edit(LP4, old, new), new)
    assert "finite" in err.message or "stopbits" in err.message


def test_programs_refuse_non_finite_numbers(tmp_path: Path) -> None:
    text = _edit(SHORT, "duration = ", "tempo_hz = nan\nduration = ")
    with pytest.raises(ProgramError, match="finite") as info:
        load_program(_write(tmp_path, text))
    assert info.value.key is not None and info.value.key.endswith("tempo_hz")
    assert info.value.line == _line_of(text, "tempo_hz = nan")


def test_durations_cannot_sum_to_infinity(tmp_path: Path) -> None:
    # 1e308 s is a finite duration, but ten repetitions of it overflow to inf.
    text = _edit(SHORT, "duration = ", "repetitions = 10\nduration = 1e308 #")
    with pytest.raises(ProgramError, match="longer than a whole session") as info:
        load_program(_write(tmp_path, text))
    assert info.value.line == _line_of(text, "duration = 1e308")


@pytest.mark.parametrize(
    "text",
    [
        "[limits]\nmax_intensity = nan\n",
        "[limits]\nsession_max_s = inf\n",
        '[device."AA:BB:CC:DD:EE:FF"]\nmax_intensity = nan\n',
    ],
)
def test_config_refuses_non_finite_numbers(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match="finite") as info:
        load_config(path)
    assert info.value.file == str(path) and info.value.line == 2


def test_api_refuses_non_finite_limits() -> None:
    with pytest.raises(ValidationError):
        SafetyLimits(max_intensity=math.nan)
    with pytest.raises(LimitError, match="finite") as info:
        narrow(DEFAULT_LIMITS, {"ramp_per_s": math.inf}, allow_raise=True)
    assert info.value.key == "ramp_per_s"


# -- 2. profile timing bounds -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["1e-4", "1e-9", "0.01"])
def test_keepalive_faster_than_the_update_rate_is_refused(tmp_path: Path, value: str) -> None:
    # 1e-4 s made the controller send 7,952 frames/s; 1e-9 never finished.
    err = refuse_profile(tmp_path, LP4, "keepalive_s = 0.5", f"keepalive_s = {value}")
    assert err.key == "limits.keepalive_s"
    assert "1/max_update_hz = 0.05" in err.message


def test_keepalive_must_stay_below_the_watchdog(tmp_path: Path) -> None:
    err = refuse_profile(tmp_path, VB6, "keepalive_s = 0.25", "keepalive_s = 1.0")
    assert err.key == "limits.keepalive_s" and "below watchdog_s" in err.message


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("reply_timeout_s = 0.3", "reply_timeout_s = 61", "limits.reply_timeout_s"),
        ("max_update_hz = 20", "max_update_hz = 1001", "limits.max_update_hz"),
        ("watchdog_s = 2.0", "watchdog_s = 1e300", "limits.watchdog_s"),
        ("lease_s = 1.5", "lease_s = 0.06", "limits.lease_s"),
    ],
)
def test_timing_values_are_bounded(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert refuse_profile(tmp_path, LP4, old, new).key == key


def test_builtin_profiles_meet_the_bounds() -> None:
    for name in builtin_profiles():
        limits = load_profile(name).limits
        assert limits.keepalive_s is None or limits.keepalive_s >= 1 / limits.max_update_hz


# -- 3. one-way limits hold even with allow_raise ---------------------------------------------


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("final_ramp_down_s = 0", "limits.final_ramp_down_s"),
        ("heat_step_down_after_s = 1e300", "limits.heat_step_down_after_s"),
        ("intro_min_s = 0", "limits.intro_min_s"),
    ],
)
def test_one_way_limits_hold_even_with_allow_raise(tmp_path: Path, line: str, key: str) -> None:
    path = _write(tmp_path, f"[limits]\nallow_raise = true\n{line}\n")
    with pytest.raises(ConfigError, match="even with allow_raise") as info:
        load_config(path)
    assert info.value.key == key and info.value.line == 3


def test_one_way_limits_may_move_the_safe_way(tmp_path: Path) -> None:
    path = _write(tmp_path, "[limits]\nfinal_ramp_down_s = 120\nheat_step_down_after_s = 300\n")
    _, limits = load_config(path)
    assert (limits.final_ramp_down_s, limits.heat_step_down_after_s) == (120, 300)


# -- 4. the introductory cap covers the start of every session --------------------------------


def _program(first_kind: str, level: float, seconds: float = 300) -> Program:
    main = Step(technique="vibration-continuous", zones=("all",), duration_s=seconds,
                intensity=(level, level))
    final = Step(technique="stroking", zones=("all",), duration_s=60, intensity=(0.1, 0.0))
    return Program(name="x", title="X", phases=(
        Phase(name="first", kind=first_kind, steps=(main,)),
        Phase(name="final", kind="final", steps=(final,)),
    ))


@pytest.mark.parametrize("kind", ["main", "introductory"])
def test_intro_cap_covers_the_first_minutes_whatever_the_phase_is_called(kind: str) -> None:
    # Before: a first phase of kind "main" reached 80 % within 2 minutes.
    timeline = plan(_program(kind, 0.8), load_profile("vb6-binary"), DEFAULT_LIMITS)
    early = [max(sp.levels) for t, sp in zip(timeline.times, timeline.setpoints, strict=True)
             if t < DEFAULT_LIMITS.intro_min_s]
    assert max(early) <= DEFAULT_LIMITS.intro_max_intensity + 1e-9
    if kind == "main":  # after the window the main level plays
        assert timeline.peak() > DEFAULT_LIMITS.intro_max_intensity
    assert any(c.rule == "introductory-phase cap" for c in timeline.clamps)


def test_builtin_programs_are_not_changed_by_the_intro_window() -> None:
    # Every built-in introduction lasts at least intro_min_s, so their plans are unchanged.
    for name in builtin_programs():
        program = load_program(name)
        assert program.phases[0].kind == "introductory"
        assert program.phases[0].duration_s >= DEFAULT_LIMITS.intro_min_s


def test_nan_in_a_timeline_means_off() -> None:
    profile = load_profile("vb6-binary")
    zones = tuple(z.id for z in profile.zones)
    n = len(zones)
    raw = Timeline(zones, [0.0, 1.0], [Setpoint((math.nan,) * n), Setpoint((0.0,) * n)], 2.0,
                   [], [], [], ["main", "main"])
    out = apply_envelope(raw, profile, DEFAULT_LIMITS)
    assert all(level == 0.0 for sp in out.setpoints for level in sp.levels)


# -- 5. profile check runs what `run` runs ----------------------------------------------------


@pytest.mark.parametrize(
    ("base", "old", "new", "key"),
    [
        # A status field of one byte cannot report level 300 or mode 300.
        (STEPPER, "max = 5", "max = 300", "replies.status"),
        (STEPPER, "shiatsu = 5", "shiatsu = 300", "replies.status"),
        # A nak field that cannot carry the device's error codes.
        (VB6, '{ field = "code" }', '{ field = "code", offset = 253 }', "replies.nak"),
    ],
)
def test_profiles_whose_replies_cannot_hold_the_values_are_refused(
    tmp_path: Path, base: str, old: str, new: str, key: str
) -> None:
    # These passed `profile check` and then failed in `run`, when the simulator first
    # reported the value.
    path = _write(tmp_path, _edit(base, old, new))
    with pytest.raises(ProfileError) as info:
        check_profile(str(path))
    assert info.value.key == key and info.value.file == str(path)
    assert info.value.line is not None


@pytest.mark.parametrize("name", sorted(builtin_profiles()))
def test_profile_check_drives_the_simulator(name: str) -> None:
    lines = check_profile(name)
    assert any("simulator obeys every frame" in line for line in lines)
    assert lines[-1] == f"profile {name} is usable"


@pytest.mark.parametrize(
    ("new", "key"),
    [
        ("{ raw = 5 }", "frequency.table.4.hz"),
        ("5", "frequency.table.4"),
        ('{ raw = 5, hz = "x" }', "frequency.table.4.hz"),
    ],
)
def test_malformed_frequency_table_names_the_entry(tmp_path: Path, new: str, key: str) -> None:
    err = refuse_profile(tmp_path, LP4, "{ raw = 5, hz = 40.0 }", new)
    assert err.key == key


def test_frequency_table_that_is_not_a_list(tmp_path: Path) -> None:
    text = LP4.replace("table = [\n", "table = 3\nold = [\n", 1)
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, text))
    assert info.value.key is not None and info.value.key.startswith("frequency.")


# -- 6. inputs that used to crash with a traceback --------------------------------------------

LOADERS = {"profile": load_profile, "program": load_program, "config": load_config}


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x00\xff\xfe binary", "not UTF-8"),
        (b"[program]\nname = \"caf\xe9\"\n", "not UTF-8"),
        (("a = " + "[" * 3000 + "]" * 3000).encode(), "nested too deeply"),
        (("a = " + "[" * 40 + "]" * 40).encode(), "nested too deeply"),
        (("a = " + "9" * 5000).encode(), "too long"),
        (b'a = "\\uD800"', "not valid TOML"),
    ],
)
def test_unreadable_files_are_input_errors(
    tmp_path: Path, loader: str, data: bytes, words: str
) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(InputError, match=words) as info:
        LOADERS[loader](path)
    assert info.value.file == str(path)


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, b"[program]\n\nname = \"caf\xe9\"\n")
    with pytest.raises(ProgramError) as info:
        load_program(path)
    assert info.value.line == 3


def test_huge_files_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, b"# " + b"x" * (2 * 1024 * 1024))
    with pytest.raises(ProfileError, match="larger than"):
        load_profile(path)


def test_motor_numbered_two_to_the_64_plus_one(tmp_path: Path) -> None:
    err = refuse_profile(tmp_path, VB6, "motors = [6, 7]", "motors = [6, 18446744073709551617]")
    assert err.key == "zone.5.motors.1"


def test_device_cap_above_the_limits_is_refused(tmp_path: Path) -> None:
    # Device tables only lower the cap; 0.9 is above the default 0.8 (it crashed in `run`).
    text = '[device."AA:BB:CC:DD:EE:FF"]\nprofile = "vb6-binary"\nmax_intensity = 0.9\n'
    with pytest.raises(ConfigError, match="can only lower it") as info:
        load_config(_write(tmp_path, text))
    assert info.value.line == 3 and info.value.key == 'device."AA:BB:CC:DD:EE:FF".max_intensity'


def test_device_cap_written_as_a_percent_is_explained(tmp_path: Path) -> None:
    text = '[device."AA:BB:CC:DD:EE:FF"]\nmax_intensity = 60\n'
    with pytest.raises(ConfigError, match=r"not a percent \(for 60 % write 0.6\)") as info:
        load_config(_write(tmp_path, text))
    assert info.value.line == 2


def test_device_cap_below_the_limits_narrows(tmp_path: Path) -> None:
    text = '[device."AA:BB:CC:DD:EE:FF"]\nmax_intensity = 0.5\n'
    config, limits = load_config(_write(tmp_path, text))
    section = config.for_device("aa:bb:cc:dd:ee:ff")
    assert narrow(limits, section.narrowing(limits)).max_intensity == 0.5
    # A stricter cap already in force (e.g. --max-intensity 40) wins without an error.
    lower = narrow(limits, {"max_intensity": 0.4})
    assert narrow(lower, section.narrowing(lower)).max_intensity == 0.4


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[limits]\nmax_intensity = []\n", "limits.max_intensity"),
        ("[limits]\nmax_intensity = 60\n", "limits.max_intensity"),
        ("[limits]\nsparing = \"maybe\"\n", "limits.sparing"),
        ("[limits]\nmax_intensty = 0.5\n", "limits.max_intensty"),
    ],
)
def test_bad_limit_values_name_key_and_line(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    assert info.value.key == key and info.value.line == 2
    assert "validation error" not in info.value.describe()

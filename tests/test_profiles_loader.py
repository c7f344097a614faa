"""Loading profiles: built-ins by name, and bad files refused naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_profiles import ProfileError, builtin_profiles, load_profile

BUILTIN = builtin_profiles()
LP4 = BUILTIN["lp4-ascii"].read_text()
VB6 = BUILTIN["vb6-binary"].read_text()
STEPPER = BUILTIN["remote-stepper"].read_text()


def refuse(tmp_path: Path, base: str, old: str, new: str) -> tuple[ProfileError, str]:
    """Write base with old replaced by new, load it, and return the error and the text."""
    assert old in base, old
    text = base.replace(old, new, 1)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.file == str(path)
    return info.value, text


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """Return the 1-based line number of the nth line containing needle."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[nth]


def test_builtins_by_name_and_path() -> None:
    assert set(BUILTIN) == {"lp4-ascii", "nus-text", "vb6-binary", "remote-stepper"}
    for name, path in BUILTIN.items():
        assert load_profile(name).name == name
        assert load_profile(path).name == name
        assert load_profile(str(path)).name == name


def test_unknown_name() -> None:
    with pytest.raises(ProfileError, match="no built-in profile or file named 'lp9'") as info:
        load_profile("lp9")
    assert info.value.hint is not None and "lp4-ascii" in info.value.hint


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "absent.toml")


def test_toml_syntax_error(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, LP4, "max = 10", "max = = 10")
    assert err.line == line_of(text, "max = = 10")


def test_unknown_anatomical_zone(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, LP4, 'covers = ["lumbosacral"]', 'covers = ["lumbar"]')
    assert err.key == "zone.2.covers"
    assert err.line == line_of(text, 'covers = ["lumbar"]')
    assert "unknown zone 'lumbar'" in err.message


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, LP4, "watchdog_s = 2.0", "watchdog_s = 2.0\nwatchdgo_s = 3")
    assert err.key == "limits.watchdgo_s"
    assert err.line == line_of(text, "watchdgo_s")


def test_unknown_technique(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, STEPPER, 'rubbing = "knead"', 'rubbbing = "knead"')
    assert err.key == "technique_modes.rubbbing"
    assert err.line == line_of(text, "rubbbing")
    assert err.hint is not None and "kneading" in err.hint


def test_technique_mapped_to_unknown_mode(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, STEPPER, 'shaking = "vibrate"', 'shaking = "wobble"')
    assert err.key == "technique_modes.shaking"
    assert err.line == line_of(text, 'shaking = "wobble"')
    assert "mode 'wobble' is not in [modes]" in err.message


def test_keepalive_not_below_watchdog(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, LP4, "keepalive_s = 0.5", "keepalive_s = 2.0")
    assert err.key == "limits.keepalive_s"
    assert err.line == line_of(text, "keepalive_s = 2.0")
    assert "must be below watchdog_s" in err.message


def test_watchdog_without_keepalive(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, VB6, "keepalive_s = 0.25\n", "")
    assert err.key == "limits.watchdog_s"
    assert err.line == line_of(text, "watchdog_s")


def test_no_stop_frame(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, LP4, '[frames.stop]\ntext = "X*{checksum}\\r\\n"\n', "")
    assert err.key == "frames"
    assert err.line == line_of(text, "[frames]")
    assert "cannot be made safe" in err.message


def test_stepping_without_down_press(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, STEPPER, "[frames.press.intensity_down]",
                       "[frames.press.intensity_sideways]")
    # The first problem found is the unknown button; fix it by removing, then the missing one.
    assert err.key == "frames.press.intensity_sideways"
    assert err.line == line_of(text, "intensity_sideways")
    block = (
        "[frames.press.intensity_down]\n"
        'layout = [{ const = [0xA5, 0x02] }, { checksum = "sum8" }]\n'
    )
    err, text = refuse(tmp_path, STEPPER, block, "")
    assert err.key == "profile.control"
    assert err.line == line_of(text, 'control = "stepping"')
    assert "intensity_down" in err.message


def test_template_field_that_does_not_exist(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, LP4, 'text = "F{value}*{checksum}\\r\\n"',
                       'text = "F{speed}*{checksum}\\r\\n"')
    assert err.key == "frames.set_frequency.text"
    assert err.line == line_of(text, "F{speed}")
    assert "set_frequency has no field 'speed'" in err.message


def test_ascii_field_too_narrow(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, LP4, "max = 10", "max = 300")
    assert err.key == "frames.set_zone.text"
    assert err.line == line_of(text, "Z{zone}L{level:02d}")
    assert "reaches 300" in err.message and "at most 99" in err.message


def test_binary_field_too_small_names_the_layout_item(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, VB6, "max = 255", "max = 300")
    assert err.key == "frames.set_zone.layout.4"
    assert err.line == line_of(text, '{ field = "level" },')
    assert text.splitlines()[err.line - 7] == "[frames.set_zone]"
    assert "(at most 255)" in err.message


def test_binary_layout_item_type_error_names_its_line(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, VB6, '{ field = "zone" },', '{ field = "zone", size = 3 },')
    assert err.key is not None and err.key.startswith("frames.set_zone.layout.3")
    assert err.line == line_of(text, 'size = 3')


def test_lease_field_without_lease(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, LP4, "lease_s = 1.5", "")
    assert err.key == "limits"
    assert err.line == line_of(text, "[limits]")


def test_ack_every_command_needs_ack(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, LP4, '[replies.ack]\ntext = "OK\\r\\n"\n', "")
    assert err.key == "limits.ack_every_command"
    assert err.line == line_of(text, "ack_every_command")


def test_frames_that_cannot_be_told_apart(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, STEPPER, "const = [0xA5, 0x05]", "const = [0xA5, 0x04]")
    assert err.key == "frames.query"
    assert err.line == line_of(text, "[frames.query]")


def test_motor_in_two_zones(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, VB6, "motors = [6, 7]", "motors = [5, 7]")
    assert err.key == "zone.5.motors"
    assert err.line == line_of(text, "motors = [5, 7]")


def test_nak_without_code(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, LP4, 'text = "ERR{code}\\r\\n"', 'text = "ERR\\r\\n"')
    assert err.key == "replies.nak"
    assert err.line == line_of(text, "[replies.nak]")


def test_template_without_line_ending(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, LP4, 'text = "Q*{checksum}\\r\\n"', 'text = "Q*{checksum}"')
    assert err.key == "frames.query.text"
    assert err.line == line_of(text, 'text = "Q*{checksum}"')


def test_error_text_says_where_and_what(tmp_path: Path) -> None:
    err, text = refuse(tmp_path, LP4, "keepalive_s = 0.5", "keepalive_s = 2.0")
    rendered = str(err)
    assert rendered.startswith(f"{tmp_path / 'bad.toml'}:{line_of(text, 'keepalive_s')}")
    assert "key 'limits.keepalive_s'" in rendered and "Use at most half" in rendered

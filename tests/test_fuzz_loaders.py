"""Bounded fuzzing of every boundary that reads outside data: only the project's own errors.

The program, profile and config loaders get arbitrary bytes, arbitrary text and mutated
built-in files; the reply and command parsers get arbitrary bytes and damaged valid frames.
A loader may accept or refuse (InputError, which the CLI turns into one paragraph and exit
2); any other exception, or a hang, is a bug. A few representative bad files go through the
real CLI too: exit 2 and no traceback.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.checks import check_profile
from controller.config import load_config
from controller.limits import DEFAULT_LIMITS
from controller.runner import plan
from firmware_profiles import Codec, builtin_profiles, load_profile
from firmware_profiles.commands import BadFrame, Command, Reply, SetAll, SetZone, Stop
from protocols import builtin_programs, load_program
from protocols.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILES = {name: path.read_text() for name, path in builtin_profiles().items()}
PROGRAMS = {name: path.read_text() for name, path in builtin_programs().items()}
CONFIG = """\
[defaults]
profile = "lp4-ascii"
port = "/dev/ttyUSB0"

[limits]
max_intensity = 0.6
sparing = true
final_ramp_down_s = 90

[device."F0:CA:00:00:00:02"]
profile = "vb6-binary"
max_intensity = 0.5
sparing = false

[screening]
answered_on = 2024-01-10
unattended = false
pain_on = 2024-01-11

[screening.answers]
tumour = false
reduced_sensation = true
"""
SOURCES = {"profile": PROFILES, "program": PROGRAMS, "config": {"config": CONFIG}}

# Values that have broken loaders before, or that sit on a boundary.
NASTY = [
    "inf", "-inf", "nan", "+nan", "1e308", "1e-308", "1e-9", "0", "-0", "-1", "0.9", "60",
    "18446744073709551617", "-18446744073709551617", "9" * 30, '""', '"x"', '"\\uD800"',
    "true", "[]", "{}", "[[]]", "[1, 2]", '["a"]', "{ raw = 1 }", "[{ raw = 1, hz = inf }]",
    "[{ raw = 1 }, { hz = 2 }]", "1979-05-27", "0x7fffffffffffffff", "3.5", '"25%"', '"1:30"',
    '"1e308s"', '"99999999999:00"', "[" * 40 + "]" * 40,
]
_VALUE = re.compile(r"(=\s*)([^\n#]+?)(\s*(#.*)?)$", re.MULTILINE)
_KEY = re.compile(r"^(\s*)([A-Za-z0-9_\-]+)(\s*=)", re.MULTILINE)


@st.composite
def mutated(draw: st.DrawFn, kind_of_file: str) -> str:
    """Draw a built-in file with one to three mutations of values, keys, lines or nesting."""
    texts = SOURCES[kind_of_file]
    text = texts[draw(st.sampled_from(sorted(texts)))]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "value", "key", "drop", "dup", "nest", "cut"]))
        lines = text.splitlines(keepends=True)
        values, keys = list(_VALUE.finditer(text)), list(_KEY.finditer(text))
        if (kind in ("value", "nest") and not values) or (kind == "key" and not keys):
            kind = "cut"
        if kind == "value":
            m = draw(st.sampled_from(values))
            new = draw(st.sampled_from(NASTY) | st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{1,5})?",
                                                              fullmatch=True))
            text = text[: m.start(2)] + new + text[m.end(2) :]
        elif kind == "key":
            m = draw(st.sampled_from(keys))
            new = draw(st.sampled_from(["x", "max", "min", "kind", "table", "zone", "step"])
                       | st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
            text = text[: m.start(2)] + new + text[m.end(2) :]
        elif kind == "drop" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[:i] + lines[i + 1 :])
        elif kind == "dup" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            text = "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
        elif kind == "nest":
            m = draw(st.sampled_from(values))
            depth = draw(st.integers(1, 1200))
            text = text[: m.start(2)] + "[" * depth + m.group(2) + "]" * depth + text[m.end(2) :]
        else:
            text = text[: draw(st.integers(0, len(text)))]
    return text


def _inputs(texts: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=600),
        st.text(max_size=600).map(lambda s: s.encode("utf-8", "surrogatepass")),
        mutated(texts).map(str.encode),
        mutated(texts).map(lambda s: s.encode() + b"\xff\xfe"),
    )


def _only_input_errors(load: Callable[[Path], object], path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        load(path)
    except InputError as exc:
        text = exc.describe()
        assert text and exc.file is not None, text  # every refusal names the file


@FUZZ
@given(data=_inputs("profile"))
def test_profile_loader_and_check_raise_only_input_errors(tmp_path: Path, data: bytes) -> None:
    # `profile check` runs the loader, the codec at extreme values and the simulator.
    _only_input_errors(lambda p: check_profile(str(p)), tmp_path / "profile.toml", data)


@FUZZ
@given(data=_inputs("program"))
def test_program_loader_raises_only_input_errors(tmp_path: Path, data: bytes) -> None:
    _only_input_errors(load_program, tmp_path / "program.toml", data)


@settings(FUZZ, max_examples=25)
@given(text=mutated("program"))
def test_mutated_programs_that_load_also_plan(tmp_path: Path, text: str) -> None:
    path = tmp_path / "program.toml"
    path.write_text(text)
    try:
        program = load_program(path)
    except InputError:
        return
    with contextlib.suppress(InputError):  # e.g. a PlanError: longer than the auto-off
        plan(program, load_profile("vb6-binary"), DEFAULT_LIMITS)


@FUZZ
@given(data=_inputs("config"))
def test_config_loader_raises_only_input_errors(tmp_path: Path, data: bytes) -> None:
    _only_input_errors(load_config, tmp_path / "config.toml", data)


# -- the byte parsers -------------------------------------------------------------------------

CODECS = {name: Codec(load_profile(name)) for name in PROFILES}


def _frames(codec: Codec) -> list[bytes]:
    """Valid frames of both directions for this profile, to damage and splice."""
    profile = codec.profile
    n, top = len(profile.zones), profile.intensity.max
    commands: list[Command] = [Stop()]
    if profile.supports("set_zone"):
        commands.append(SetZone(0, top, profile.limits.lease_s))
    if profile.supports("set_all"):
        commands.append(SetAll((top,) * n, profile.limits.lease_s))
    out = [codec.encode(c) for c in commands]
    for kind, fields in (("ack", {}), ("nak", {"code": 2})):
        if profile.supports(kind):
            out.append(codec.encode_reply(Reply(kind, fields)))  # type: ignore[arg-type]
    return out


@st.composite
def streams(draw: st.DrawFn, codec: Codec) -> list[bytes]:
    """Draw chunks of arbitrary bytes mixed with valid, damaged and truncated frames."""
    frames = _frames(codec)
    pieces: list[bytes] = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["junk", "frame", "flip", "cut"]))
        if kind == "junk":
            pieces.append(draw(st.binary(max_size=64)))
            continue
        frame = bytearray(draw(st.sampled_from(frames)))
        if kind == "flip":
            i = draw(st.integers(0, len(frame) - 1))
            frame[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            frame = frame[: draw(st.integers(0, len(frame)))]
        pieces.append(bytes(frame))
    data = b"".join(pieces)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_reply_and_command_parsers_never_raise(name: str) -> None:
    codec = CODECS[name]

    @settings(FUZZ)
    @given(chunks=streams(codec))
    def check(chunks: list[bytes]) -> None:
        replies, commands = codec.reply_parser(), codec.command_parser()
        for chunk in chunks:
            for item in replies.feed(chunk):
                assert isinstance(item, Reply | BadFrame), item
            for cmd in commands.feed(chunk):
                assert not isinstance(cmd, Reply), cmd

    check()


# -- through the real command line ------------------------------------------------------------

CLI = [sys.executable, "-m", "controller.cli"]
LP4 = PROFILES["lp4-ascii"]
VB6 = PROFILES["vb6-binary"]
SHORT = PROGRAMS["lumbar-short"]
BAD_FILES: dict[str, tuple[str, bytes]] = {
    "binary-profile": ("profile", b"\x00\xff\xfe[profile]\x81"),
    "nested-profile": ("profile", LP4.replace("max = 10", "max = " + "[" * 3000 + "]" * 3000)
                       .encode()),
    "lease-inf": ("profile", LP4.replace("lease_s = 1.5", "lease_s = inf").encode()),
    "keepalive-tiny": ("profile", LP4.replace("keepalive_s = 0.5", "keepalive_s = 1e-9").encode()),
    "motor-2^64+1": ("profile", VB6.replace("motors = [6, 7]", "motors = [6, 18446744073709551617]")
                     .encode()),
    "bad-table": ("profile", LP4.replace("{ raw = 5, hz = 40.0 }", "{ raw = 5 }").encode()),
    "binary-program": ("program", bytes(range(256))),
    "nested-program": ("program", SHORT.replace('name = "lumbar-short"',
                                                "name = " + "[" * 3000 + "]" * 3000).encode()),
    "endless-program": ("program", SHORT.replace("duration = ", "duration = 1e308 #").encode()),
    "nested-config": ("config", ("[limits]\nmax_intensity = " + "[" * 3000 + "]" * 3000)
                      .encode()),
    "device-0.9": ("config", b'[device."AA:BB:CC:DD:EE:FF"]\nmax_intensity = 0.9\n'),
    "ramp-down-0": ("config", b"[limits]\nallow_raise = true\nfinal_ramp_down_s = 0\n"),
    "screening-future": ("config", b"[screening]\nanswered_on = 2999-01-01\n"),
    "screening-word": ("config", b'[screening.answers]\ntumour = "no"\n'),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_cli_refuses_bad_files_with_exit_2_and_no_traceback(tmp_path: Path, case: str) -> None:
    kind, data = BAD_FILES[case]
    path = tmp_path / f"{case}.toml"
    path.write_bytes(data)
    args = {
        "profile": ["profile", "check", str(path)],
        "program": ["program", "check", str(path)],
        "config": ["plan", "lumbar-short", "--config", str(path)],
    }[kind]
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert str(path.name) in done.stderr.replace("\n", "")

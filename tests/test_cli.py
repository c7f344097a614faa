"""The `cushion` command line, run as a user runs it: a subprocess, exit codes, output."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import tty
from pathlib import Path
from typing import Any

import pytest

from tests.invariants import Ramp

CLI = [sys.executable, "-m", "controller.cli"]
ROOT = Path(__file__).resolve().parent.parent


def cushion(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion and return what it did."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def events(stdout: str) -> list[dict[str, object]]:
    """Parse a --json event stream."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_run_lumbar_classic_at_max_speed_respects_the_envelope() -> None:
    done = cushion("run", "lumbar-classic", "--speed", "max", "--json")
    assert done.returncode == 0, done.stderr
    stream = events(done.stdout)
    start = stream[0]
    assert start["kind"] == "session_started"
    caps = start["caps"]
    setpoints = [e for e in stream if e["kind"] == "setpoint"]
    assert len(setpoints) > 1000  # patterns stream many updates (rubbing ~100/min)
    for e in setpoints:
        for value, cap in zip(e["intensity"], caps, strict=True):  # type: ignore[call-overload]
            assert value <= cap + 1e-9, e
    quantum = 1 / int(start["levels_max"])  # type: ignore[call-overload]
    points = [(float(e["t_s"]), max(e["intensity"])) for e in setpoints]  # type: ignore[arg-type]
    assert Ramp(float(start["ramp_per_s"]), quantum).check(points, 0.0) == []  # type: ignore[arg-type]
    assert not any(setpoints[-1]["intensity"])  # type: ignore[arg-type]
    assert stream[-1]["kind"] == "all_off" and stream[-1]["sent"] is True
    end = next(e for e in stream if e["kind"] == "session_ended")
    assert end["outcome"] == "done" and end["exit_code"] == 0


def test_bad_program_file_names_file_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[program]\nname = "x"\ntitle = "X"\n\n[[phase]]\nname = "m"\nkind = "main"\n'
        '[[phase.step]]\ntechnique = "stroking"\nzones = ["back"]\nduration = "1:00"\n'
        'intensity = "150%"\n'
    )
    done = cushion("run", str(bad), "--speed", "max")
    assert done.returncode == 2
    assert f"{bad}:12" in done.stderr and "intensity" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_profile_file_is_refused(tmp_path: Path) -> None:
    source = Path("firmware_profiles/builtin/lp4-ascii.toml").read_text()
    bad = tmp_path / "bad-profile.toml"
    bad.write_text(source.replace("[frames.stop]", "[frames.halt]"))
    done = cushion("profile", "check", str(bad))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{bad}:80" in done.stderr and "'halt' is not a known key" in done.stderr
    stop_frame = '[frames.stop]\ntext = "X*{checksum}' + "\\r\\n" + '"\n'
    assert stop_frame in source
    bad.write_text(source.replace(stop_frame, ""))
    done = cushion("profile", "check", str(bad))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "stop" in done.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "no-such-program"], "lumbar-classic"),
        (["run", "lumbar-classic", "--speed", "fast"], "--speed"),
        (
            [
                "run",
                "lumbar-classic",
                "--port",
                "/dev/ttyUSB9",
                "--profile",
                "lp4-ascii",
                "--speed",
                "10",
            ],
            "real time",
        ),
        (["run", "lumbar-classic", "--port", "/dev/ttyUSB9"], "--profile"),
        (
            ["run", "lumbar-classic", "--profile", "remote-stepper", "--speed", "max"],
            "lumbar-short",
        ),
        (["run", "lumbar-classic", "--max-intensity", "150"], "percentage"),
    ],
)
def test_bad_options_exit_2_with_a_hint(args: list[str], needle: str) -> None:
    done = cushion(*args)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr


def test_config_cannot_raise_a_limit_silently(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[limits]\nmax_intensity = 0.95\n")
    done = cushion("run", "lumbar-short", "--speed", "max", "--config", str(config))
    assert done.returncode == 2 and "allow_raise" in done.stderr
    config.write_text("[limits]\nmax_intensity = 0.5\n")
    done = cushion("run", "lumbar-short", "--speed", "max", "--json", "--config", str(config))
    assert done.returncode == 0
    assert events(done.stdout)[0]["caps"] == [0.3, 0.3, 0.5, 0.5]


def test_missing_serial_port_exits_3_with_a_hint() -> None:
    done = cushion("run", "lumbar-short", "--port", "/dev/ttyUSB9", "--profile", "lp4-ascii")
    assert done.returncode == 3
    assert "/dev/ttyUSB9" in done.stderr and "Traceback" not in done.stderr


def test_a_device_that_never_answers_exits_3() -> None:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    try:
        done = cushion(
            "run",
            "lumbar-short",
            "--port",
            os.ttyname(slave),
            "--profile",
            "lp4-ascii",
            "--json",
            timeout=60,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert done.returncode == 3, done.stderr
    assert "did not answer" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.realtime
@pytest.mark.parametrize(
    ("sigs", "emergency"),
    [
        ([signal.SIGTERM], [True]),
        ([signal.SIGINT], [False]),  # Ctrl-C: the gentle stop, ramping down
        ([signal.SIGINT, signal.SIGINT], [False, True]),  # a second Ctrl-C cuts at once
    ],
    ids=["SIGTERM", "SIGINT", "SIGINT-twice"],
)
def test_a_signal_stops_the_outputs_and_exits_130(
    sigs: list[signal.Signals], emergency: list[bool]
) -> None:
    # 255 levels, so a ramp-down shows as many small steps on the wire.
    proc = subprocess.Popen(
        [*CLI, "run", "lumbar-classic", "--speed", "20", "--json", "--profile", "vb6-binary"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait for the session to be under way, not for a clock
        event = json.loads(line)
        if event["kind"] == "setpoint" and max(event["intensity"]) >= 0.1:
            break
    proc.send_signal(sigs[0])
    tail: list[dict[str, Any]] = []
    if len(sigs) > 1:
        for line in proc.stdout:  # the gentle stop began: the second one lands in its ramp
            tail.append(json.loads(line))
            if tail[-1]["kind"] == "stop_requested":
                break
        proc.send_signal(sigs[1])
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    tail += events(rest)
    stops = [e for e in tail if e["kind"] == "stop_requested"]
    assert [e["emergency"] for e in stops] == emergency, stops
    offs = [i for i, e in enumerate(tail) if e["kind"] == "all_off"]
    assert offs and all(tail[i]["sent"] for i in offs)
    after = tail[offs[0] :]
    assert not any(e["kind"] == "setpoint" and any(e["levels"]) for e in after)
    if emergency == [False]:
        # The ramp-down: outputs only fall between the stop and the all-off.
        first = next(i for i, e in enumerate(tail) if e["kind"] == "stop_requested")
        ramp = [max(e["intensity"]) for e in tail[first : offs[0]] if e["kind"] == "setpoint"]
        assert len(ramp) >= 3 and ramp[-1] < ramp[0], ramp
        assert all(b <= a + 1e-9 for a, b in itertools.pairwise(ramp)), ramp


def test_plan_json_and_plot(tmp_path: Path) -> None:
    done = cushion("plan", "lumbar-classic", "--profile", "vb6-binary", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["peak"] <= 0.8 and plan["steps"] and plan["clamps"]
    png = tmp_path / "plan.png"
    done = cushion("plan", "lumbar-classic", "--plot", str(png))
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "kept gentle over the kidneys; at " in done.stdout  # the clamp, in words


def test_listing_checking_and_schema() -> None:
    for args in (
        ["programs"],
        ["profiles"],
        ["profile", "check", "vb6-binary"],
        ["profile", "check", "remote-stepper"],
        ["program", "check", "lumbar-classic"],
    ):
        done = cushion(*args)
        assert done.returncode == 0, (args, done.stderr)
    schema = json.loads(cushion("profile", "schema").stdout)
    assert "properties" in schema


def test_profile_check_reads_the_boot_frame_or_says_why_not(tmp_path: Path) -> None:
    done = cushion("profile", "check", "lp4-ascii")
    assert done.returncode == 0 and "(ack, boot, status)" in done.stdout, done.stdout
    text = (ROOT / "firmware_profiles" / "builtin" / "lp4-ascii.toml").read_text()
    clash = tmp_path / "clash.toml"  # a boot frame the controller would take for an ack
    clash.write_text(text.replace('text = "LP4 READY\\r\\n"', 'text = "OK\\r\\n"'))
    assert clash.read_text() != text
    done = cushion("profile", "check", str(clash))
    assert done.returncode == 2, done.stdout
    assert "replies.boot" in done.stderr and "Traceback" not in done.stderr


def test_plan_says_when_a_dead_controller_cannot_stop_the_cushion() -> None:
    stepper = cushion("plan", "lumbar-short", "--profile", "remote-stepper", "--json")
    assert stepper.returncode == 0, stepper.stderr
    warning = json.loads(stepper.stdout)["dead_man"]
    assert "cannot be stopped" in warning and "15 minutes" in warning
    leased = cushion("plan", "lumbar-short", "--profile", "lp4-ascii", "--json")
    assert json.loads(leased.stdout)["dead_man"] is None

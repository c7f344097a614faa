"""The controller and a standalone simulated cushion in two processes, over a real pty."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli import CLI, cushion, events

pytestmark = pytest.mark.realtime

TINY = """
[program]
name = "tiny"
title = "Tiny test program"

[[phase]]
name = "Main"
kind = "main"
[[phase.step]]
technique = "rubbing"
zones = ["back"]
duration = 6
intensity = ["20%", "30%"]

[[phase]]
name = "Final"
kind = "final"
[[phase.step]]
technique = "stroking"
zones = ["all"]
duration = 3
intensity = ["10%", "0%"]
"""

# final_ramp_down_s can only be made longer; on vb6-binary (255 levels) the 9-second
# program still reaches real levels under the default 60 s ramp-down.
FAST = "[limits]\nallow_raise = true\nramp_per_s = 0.04\n"


@pytest.fixture
def sim_port() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start `cushion sim` in its own process and yield it with the port it printed."""
    proc = subprocess.Popen(
        [*CLI, "sim", "--profile", "vb6-binary"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    assert port.startswith("/dev/pts/"), proc.stderr.read() if proc.stderr else ""
    yield proc, port
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def test_run_against_a_standalone_simulator(
    sim_port: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    _, port = sim_port
    program = tmp_path / "tiny.toml"
    program.write_text(TINY)
    # A nine-second program only reaches a level under a faster ramp and a short ramp-down.
    config = tmp_path / "config.toml"
    config.write_text(FAST)
    done = cushion(
        "run",
        str(program),
        "--port",
        port,
        "--profile",
        "vb6-binary",
        "--json",
        "--config",
        str(config),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stream = events(done.stdout)
    setpoints = [e for e in stream if e["kind"] == "setpoint"]
    assert setpoints and max(max(e["levels"]) for e in setpoints) >= 1  # type: ignore[call-overload]
    end = next(e for e in stream if e["kind"] == "session_ended")
    assert end["outcome"] == "done"
    assert abs(float(end["t_s"]) - 9.0) < 0.5  # real time, no drift to speak of


def test_device_gone_mid_session_exits_3(
    sim_port: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    proc, port = sim_port
    program = tmp_path / "tiny.toml"
    program.write_text(TINY)
    run = subprocess.Popen(
        [*CLI, "run", str(program), "--port", port, "--profile", "vb6-binary", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    for line in run.stdout:
        if json.loads(line)["kind"] == "phase":
            break
    proc.kill()  # the cushion's side of the cable is gone
    _, err = run.communicate(timeout=30)
    assert run.returncode == 3, err
    assert "Traceback" not in err

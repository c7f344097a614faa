"""`cushion sim --faults FILE` as a user runs it: a bad schedule is refused with file and line,
a good one is played against a real `cushion run --port` in another process."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "controller.cli"]


def test_a_bad_schedule_is_refused_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "faults.toml"
    bad.write_text('[[fault]]\nkind = "silence"\n\n[[fault]]\nkind = "melt"\n', encoding="utf-8")
    done = subprocess.run(
        [*CLI, "sim", "--faults", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert f"{bad}:5" in done.stderr and "kind" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not done.stdout  # refused before any pty was announced


def _first_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """Return the first stdout line of ``proc`` (bounded wait; the port path)."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if sel.select(timeout=max(0.0, end - time.monotonic())):
                return proc.stdout.readline().strip()
    raise AssertionError("cushion sim never printed its port")


@pytest.mark.realtime
def test_a_silence_schedule_makes_a_run_end_with_a_device_error(tmp_path: Path) -> None:
    schedule = tmp_path / "silence.toml"
    schedule.write_text(
        '[[fault]]\nkind = "silence"\nafter = "connected"\n', encoding="utf-8"
    )  # no replies from the moment a controller opens the port, to the end
    sim = subprocess.Popen(
        [*CLI, "sim", "--profile", "lp4-ascii", "--faults", str(schedule)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = _first_line(sim, 60)
        assert port.startswith("/dev/"), port
        done = subprocess.run(
            [*CLI, "run", "lumbar-short", "--port", port, "--profile", "lp4-ascii", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert done.returncode == 3, done.stderr
        assert "did not answer" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    finally:
        sim.send_signal(signal.SIGINT)
        try:
            sim.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.communicate()
    assert sim.returncode in (0, 130), sim.returncode

"""The course from the journal: the rising cap of the first sessions, the course counter,
the daily limits and the dose, driven through the real `cushion run` and `cushion history`."""

from __future__ import annotations

import itertools
import json
import math
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.course import DEFAULT_DAILY_DOSE_S
from controller.events import Event, SessionEnded, SessionStarted, SetpointSent
from controller.journal import Journal

CLI = [sys.executable, "-m", "controller"]

# Vibration at 100 % asked for 16 minutes, so every cap shows as the session's peak and the
# session counts in the course (over 10 minutes on).
STEADY = """
[program]
name = "steady"
title = "Steady test program"

[[phase]]
name = "Introductory"
kind = "introductory"
[[phase.step]]
technique = "stroking"
zones = ["all"]
duration = "3:00"
intensity = ["20%", "30%"]

[[phase]]
name = "Main"
kind = "main"
[[phase.step]]
technique = "vibration-continuous"
zones = ["all"]
duration = "8:00"
repetitions = 2
intensity = "100%"

[[phase]]
name = "Final"
kind = "final"
[[phase.step]]
technique = "stroking"
zones = ["all"]
duration = "3:00"
intensity = ["30%", "0%"]
"""


class Home:
    """A new user's scratch journal and config, and the real command line run on them."""

    def __init__(self, root: Path, config: str = "") -> None:
        self.journal = root / "journal.sqlite3"
        self.config = root / "config.toml"
        self.config.write_text(config, encoding="utf-8")
        self.program = root / "steady.toml"
        self.program.write_text(STEADY, encoding="utf-8")

    def cushion(self, *args: str, columns: int = 160) -> subprocess.CompletedProcess[str]:
        """Run `cushion ARGS` on this home's journal and config, to completion."""
        env = {**os.environ, "CUSHION_JOURNAL": str(self.journal),
               "CUSHION_CONFIG": str(self.config), "COLUMNS": str(columns)}
        return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env,
                              timeout=240, check=False)

    def run_steady(self) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
        """Play the steady program on the simulator as fast as it goes; the --json events."""
        done = self.cushion("run", str(self.program), "--speed", "max", "--json", "--yes")
        assert done.returncode == 0, done.stderr
        return done, [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def history(self) -> list[dict[str, Any]]:
        """Return `cushion history --json --limit 0`, parsed."""
        done = self.cushion("history", "--json", "--limit", "0")
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]


def model_cap(k: int, *, sparing: float = 0.5, top: float = 0.8, n: int = 3) -> float:
    """The rule as docs/journal.md states it: session k of n sparing sessions is held at
    sparing + (top - sparing) * (k - 1) / n, and from session n + 1 at the overall cap."""
    low = min(sparing, top)
    return top if k > n else low + (top - low) * (k - 1) / n


def tenths(x: float) -> float:
    """lp4-ascii plays levels 0..10: an intensity rounds down to a tenth."""
    return math.floor(x * 10 + 1e-6) / 10


def peak_on_the_wire(stream: list[dict[str, Any]]) -> float:
    """The highest intensity any setpoint put on the wire (kidney zones are capped lower)."""
    return float(max(max(e["intensity"]) for e in stream if e["kind"] == "setpoint"))


def test_a_new_users_first_sessions_run_under_a_rising_cap(tmp_path: Path) -> None:
    home = Home(tmp_path)
    for k in range(1, 6):
        done, stream = home.run_steady()
        want = tenths(model_cap(k))
        assert peak_on_the_wire(stream) == pytest.approx(want), k
        assert max(stream[0]["caps"]) == pytest.approx(model_cap(k)), k
        row = home.history()[-1]
        assert row["peak_intensity"] == pytest.approx(want)
        assert row["sparing"] is (k <= 3) and row["course_session"] == k and row["counted"]
        if k <= 3:
            assert f"Sparing session {k} of 3" in done.stderr
            assert f"held at {model_cap(k):.0%} today" in done.stderr
        else:
            assert "Sparing session" not in done.stderr
        assert f"Simulator session {k} of a course of about 10-12" in done.stderr
    assert [tenths(model_cap(k)) for k in range(1, 6)] == [0.5, 0.6, 0.7, 0.8, 0.8]


def test_the_config_sets_the_sparing_sessions_and_the_cap_never_rises(tmp_path: Path) -> None:
    home = Home(tmp_path, "[course]\nsparing_sessions = 1\n\n[limits]\nmax_intensity = 0.7\n")
    peaks = [peak_on_the_wire(home.run_steady()[1]) for _ in range(2)]
    assert peaks == [tenths(model_cap(1, top=0.7, n=1)), tenths(model_cap(2, top=0.7, n=1))]
    assert peaks == [0.5, 0.7]  # and never above the user's own 70 %


def test_a_course_setting_out_of_bounds_is_refused_naming_the_key(tmp_path: Path) -> None:
    home = Home(tmp_path, "[course]\nmax_sessions_per_day = 5\n")
    done = home.cushion("run", str(home.program), "--speed", "max", "--yes")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "course.max_sessions_per_day" in done.stderr and "3" in done.stderr


# --- sessions on a "real" cushion, written into the journal as a session would -------------


def real_session(
    journal: Journal,
    on_s: float = 700.0,
    level: float = 0.5,
    *,
    days_ago: float = 0.0,
    endpoint: str = "serial:/dev/ttyUSB0",
) -> int:
    """Journal one session on a cushion: both zones at `level` for `on_s` seconds."""
    recorder = journal.start_session(program="lumbar-classic", profile="lp4-ascii",
                                     endpoint=endpoint)
    events: list[Event] = [
        SessionStarted(0.0, "lumbar-classic", "lp4-ascii", endpoint, on_s, ("lower", "seat"),
                       (0.8, 0.8), 0.02, 10),
        SetpointSent(0.0, (5, 5), (level, level), None, None, None, level),
        SessionEnded(on_s, "done", 0),
    ]
    for event in events:
        recorder(event)
    recorder.end()
    if days_ago:
        moved = datetime.now().astimezone() - timedelta(days=days_ago)
        conn = sqlite3.connect(journal.path)
        with conn:
            conn.execute("UPDATE sessions SET started_at = ?, ended_at = ? WHERE id = ?",
                         (moved.isoformat(timespec="milliseconds"),
                          (moved + timedelta(seconds=on_s)).isoformat(timespec="milliseconds"),
                          recorder.id))
        conn.close()
    return recorder.id


def test_the_course_counter_numbers_counted_sessions_and_a_long_break_starts_anew(
    tmp_path: Path,
) -> None:
    home = Home(tmp_path)
    with Journal.open(home.journal) as journal:
        for days in (70, 69, 68):  # an old course of three
            real_session(journal, days_ago=days)
        real_session(journal, on_s=300.0, days_ago=40)  # 5 minutes on: not counted
        for days in (12, 10, 8, 6, 4, 2):  # a break of 28 days or more: a new course
            real_session(journal, days_ago=days)
        real_session(journal, endpoint="sim:lp4-ascii")  # the simulator's own course
    rows = home.history()
    assert [r["course_session"] for r in rows] == [1, 2, 3, None, 1, 2, 3, 4, 5, 6, 1]
    assert [r["counted"] for r in rows] == [True] * 3 + [False] + [True] * 7
    table = home.cushion("history", "--limit", "0")
    assert "Course: session 6 of a course of about 10-12." in table.stdout
    assert "Simulator course: session 1 of a course of about 10-12" in table.stdout
    # The next session on a cushion is number 7; it asks for the port only after saying so.
    done = home.cushion("run", "lumbar-classic", "--port", "/dev/ttyUSB9", "--profile",
                        "lp4-ascii", "--yes")
    assert done.returncode == 3, done.stderr
    assert "Session 7 of a course of about 10-12" in done.stderr
    assert "Sparing session" not in done.stderr


def test_course_length_notes_at_ten_and_past_twelve(tmp_path: Path) -> None:
    home = Home(tmp_path)
    with Journal.open(home.journal) as journal:
        for days in range(12, 3, -1):  # nine sessions, one a day
            real_session(journal, days_ago=days)
    run = ("run", "lumbar-classic", "--port", "/dev/ttyUSB9", "--profile", "lp4-ascii", "--yes")
    done = home.cushion(*run)
    assert "Session 10 of a course" in done.stderr and "this is session 10" in done.stderr
    with Journal.open(home.journal) as journal:
        for days in (3, 2, 1):
            real_session(journal, days_ago=days)
    done = home.cushion(*run)
    assert "Session 13 of a course" in done.stderr
    assert "This course has had 12 sessions" in done.stderr and "doctor" in done.stderr


def test_a_simulator_session_does_not_touch_the_real_course(tmp_path: Path) -> None:
    home = Home(tmp_path)
    with Journal.open(home.journal) as journal:
        for days in (5, 4, 3, 2, 1):
            real_session(journal, days_ago=days)
    _, stream = home.run_steady()
    assert peak_on_the_wire(stream) == tenths(model_cap(1))  # the simulator's first session
    assert [r["course_session"] for r in home.history()] == [1, 2, 3, 4, 5, 1]


def test_the_daily_number_of_sessions_is_refused_with_when_it_is_allowed(tmp_path: Path) -> None:
    home = Home(tmp_path)
    with Journal.open(home.journal) as journal:
        first, second = real_session(journal), real_session(journal)
        for _ in range(3):
            real_session(journal, on_s=120.0)  # short tries do not count
    run = ("run", "lumbar-classic", "--port", "/dev/ttyUSB9", "--profile", "lp4-ascii", "--yes")
    done = home.cushion(*run)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "2 session(s) of 10 minutes or more today, the daily limit of 2" in done.stderr
    tomorrow = (datetime.now() + timedelta(days=1)).strftime("%a %d %b")
    assert f"allowed tomorrow ({tomorrow}) from 00:00" in done.stderr
    assert "not a medical threshold" in done.stderr
    assert len(home.history()) == 5  # refused before a session started: nothing journaled
    # 2 x 700 s and 3 x 120 s with both zones at 0.5: 0.25 x 1760 s on the busiest zone.
    table = home.cushion("history").stdout
    assert "Today on a cushion: 2 of 2 session(s), vibration dose 440 of 1536 s." in table
    lines = table.splitlines()
    assert lines[0].split() == ["#", "started", "program", "cushion", "played", "peak", "on",
                                "course", "dose", "outcome", "notes"]
    assert lines[1].split()[-3:] == ["1", "175", "done"]
    assert lines[3].split()[-3:] == ["-", "30", "done"]  # a short try: not counted
    narrow = home.cushion("history", columns=80).stdout.splitlines()
    assert narrow[0].split() == ["#", "started", "program", "played", "peak", "course",
                                 "outcome", "notes"]
    assert max(len(line) for line in narrow) <= 80
    # The simulator is never refused.
    assert home.run_steady()[0].returncode == 0
    # The same two sessions yesterday: the run goes on to the port (which is not there).
    conn = sqlite3.connect(home.journal)
    with conn:
        conn.execute("UPDATE sessions SET started_at = ? WHERE id IN (?, ?)",
                     ((datetime.now().astimezone() - timedelta(days=1)).isoformat(),
                      first, second))
    conn.close()
    done = home.cushion(*run)
    assert done.returncode == 3 and "/dev/ttyUSB9" in done.stderr, done.stderr


def test_the_daily_dose_is_refused_with_its_numbers(tmp_path: Path) -> None:
    home = Home(tmp_path)
    with Journal.open(home.journal) as journal:
        real_session(journal, on_s=1450.0, level=1.0)  # 1450 s of dose: one counted session
    run = ("run", "lumbar-classic", "--port", "/dev/ttyUSB9", "--profile", "lp4-ascii", "--yes")
    done = home.cushion(*run)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    text = " ".join(done.stderr.split())
    assert "today's vibration dose is 1450 s" in text
    assert f"daily budget of {DEFAULT_DAILY_DOSE_S:.0f} s" in text and "tomorrow" in text
    # lumbar-short fits in what is left of the budget (its plan gives about 58 s).
    done = home.cushion("run", "lumbar-short", "--port", "/dev/ttyUSB9", "--profile",
                        "lp4-ascii", "--yes")
    assert done.returncode == 3, done.stderr
    # A session that alone passes the budget is refused on a fresh day too.
    home.config.write_text("[course]\ndaily_dose_s = 50\n", encoding="utf-8")
    with Journal.open(home.journal) as journal:
        conn = sqlite3.connect(journal.path)
        with conn:
            conn.execute("UPDATE sessions SET started_at = '2020-01-01T00:00:00.000+00:00'")
        conn.close()
    done = home.cushion(*run)
    assert done.returncode == 2 and "this session alone would give" in done.stderr


# --- the dose --------------------------------------------------------------------------------


def test_a_constant_setpoint_stream_gives_its_known_dose(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        recorder = journal.start_session(program="p", profile="lp4-ascii",
                                         endpoint="serial:/dev/ttyUSB0")
        recorder(SessionStarted(0.0, "p", "lp4-ascii", "serial:/dev/ttyUSB0", 600.0,
                                ("a", "b", "c"), (0.8,) * 3, 0.02, 10))
        # 0.5 and 0.25 held from 10 s to 610 s, sent again every 0.1 s; c stays off.
        for i in range(6001):
            t = 10.0 + i / 10
            recorder(SetpointSent(t, (5, 2, 0), (0.5, 0.25, 0.0), None, None, None, 0.5))
        recorder(SessionEnded(610.0, "done", 0))
        recorder.end()
        row = journal.sessions()[-1]
    assert row.dose["a"] == pytest.approx(0.25 * 600, rel=1e-12)
    assert row.dose["b"] == pytest.approx(0.0625 * 600, rel=1e-12)
    assert "c" not in row.dose
    assert row.at_intensity_s == pytest.approx(600.0, rel=1e-12)


@pytest.mark.parametrize("profile_name", ["lp4-ascii", "vb6-binary"])
def test_the_journal_dose_is_the_wires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile_name: str
) -> None:
    from controller.cli import _journaled
    from controller.limits import DEFAULT_LIMITS
    from controller.runner import RunOptions
    from controller.transports.base import Endpoint
    from controller.transports.sim import SimTransport
    from firmware_profiles import load_profile
    from hil.cushion import SimulatedCushion
    from hil.vtime import run_virtual
    from protocols import load_program

    monkeypatch.setenv("CUSHION_JOURNAL", str(tmp_path / "j.sqlite3"))
    monkeypatch.setenv("CUSHION_CONFIG", str(tmp_path / "none.toml"))
    prof = load_profile(profile_name)
    prog = load_program("lumbar-short")
    cushion = SimulatedCushion(prof)
    endpoint = Endpoint("sim", prof.name)

    async def go() -> Any:
        transport = SimTransport(endpoint, prof, cushion)
        options = RunOptions(endpoint, handle_signals=False)
        return await _journaled(prog, prof, DEFAULT_LIMITS, options, lambda e: None,
                                transport=transport)

    assert run_virtual(go()).outcome == "done"
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        row = journal.sessions()[-1]
    # What the simulated motors were told, integrated here: level changes held until the
    # next, as a fraction of the profile's range, squared.
    lo, span = prof.intensity.min, prof.intensity.max - prof.intensity.min
    recorder = cushion.recorder
    for z, zone in enumerate(prof.zones):
        changes = recorder.levels(z)
        assert not changes or changes[-1][1] == 0  # ends off
        wire = sum(max(0.0, (level - lo) / span) ** 2 * (t1 - t0)
                   for (t0, level), (t1, _) in itertools.pairwise(changes))
        assert row.dose.get(zone.id, 0.0) == pytest.approx(wire, rel=1e-9, abs=1e-9), zone.id
    assert max(row.dose.values()) > 10  # a real session's worth, not an empty one

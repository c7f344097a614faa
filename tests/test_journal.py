"""The session journal on real SQLite files: rows, events, totals, counts, migrations,
interrupted sessions, bad files, two writers, a failing journal, and `cushion history`."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.events import (
    AllOff,
    ClampApplied,
    Event,
    LinkDown,
    LinkUp,
    Paused,
    PhaseStarted,
    Resumed,
    SessionEnded,
    SessionStarted,
    SetpointSent,
    StepStarted,
)
from controller.history import history
from controller.journal import (
    ENV_VAR,
    INTERRUPTED,
    SCHEMA_VERSION,
    Journal,
    JournalError,
    Tally,
    default_path,
    is_simulated,
)
from protocols.errors import CushionError, InputError
from tests.journal_child import V1_SCHEMA, fields, make_v1_journal, script

ROOT = Path(__file__).resolve().parent.parent
ZONES = ("upper-left", "upper-right", "lower", "seat")


def setpoint(t_s: float, *intensity: float) -> SetpointSent:
    levels = tuple(round(x * 10) if math.isfinite(x) else 0 for x in intensity)
    return SetpointSent(t_s, levels, intensity, None, None, None, max(intensity))


def started(program: str = "lumbar-short", profile: str = "lp4-ascii") -> SessionStarted:
    return SessionStarted(
        0.0, program, profile, "serial:/dev/ttyUSB0", 600.0, ZONES, (0.3, 0.3, 0.8, 0.8), 0.02, 10
    )


def a_session() -> list[Event]:
    """A short session as the runner emits it, pause and link loss included."""
    return [
        AllOff(0.0, True, "opening"),
        started(),
        PhaseStarted(0.0, "warm-up", "intro", 60.0),
        StepStarted(0.0, "stroking", "intro", 2, 60.0),
        setpoint(1.0, 0.1, 0.1, 0.0, 0.0),  # 1.0-3.0 at 0.1 on two zones
        setpoint(3.0, 0.2, 0.3, 0.5, 0.0),  # 3.0-5.0
        ClampApplied(4.0, "lower", "kidney-zone cap", 0.9, 0.5),
        Paused(5.0, "user"),  # off 5.0-8.0
        Resumed(8.0),
        setpoint(8.0, 0.0, 0.0, 0.0, 0.4),  # 8.0-9.0
        LinkDown(9.0, "cable"),  # off 9.0-12.0
        LinkUp(11.0),
        setpoint(12.0, 0.0, 0.0, 0.0, 0.0),  # all zero: not at intensity
        setpoint(13.0, 0.0, 0.0, 0.6, 0.0),  # 13.0-15.0
        AllOff(15.0, True, "program finished"),
        SessionEnded(15.0, "done", 0, {"message": "program finished", "position_s": 15.0}),
        AllOff(15.0, True, "session over"),
    ]


def record(
    journal: Journal, events: list[Event], *, sparing: bool = False, screening_skipped: bool = False
) -> int:
    recorder = journal.start_session(
        program="lumbar-short",
        profile="lp4-ascii",
        endpoint="serial:/dev/ttyUSB0",
        sparing=sparing,
        screening_skipped=screening_skipped,
    )
    for event in events:
        recorder(event)
    recorder.end()
    assert recorder.error is None
    return recorder.id


def test_a_session_and_its_events_round_trip(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        session_id = record(journal, a_session(), sparing=True, screening_skipped=True)
        row = journal.session(session_id)
        stored = journal.events(session_id)
    assert row is not None
    assert (row.program, row.profile, row.endpoint) == (
        "lumbar-short",
        "lp4-ascii",
        "serial:/dev/ttyUSB0",
    )
    assert (row.outcome, row.exit_code, row.sparing, row.screening_skipped) == (
        "done",
        0,
        True,
        True,
    )
    assert not row.simulated
    assert row.ended_at is not None and before - timedelta(seconds=1) <= row.started_at
    assert row.started_at <= row.ended_at and row.started_at.tzinfo is not None
    assert row.planned_s == 600.0 and row.last_t_s == 15.0
    assert row.peak_intensity == 0.6
    # 1-3, 3-5, 8-9 and 13-15 s have an output above zero; pause and link loss do not count.
    assert row.at_intensity_s == pytest.approx(7.0)
    assert row.dose == pytest.approx(
        {
            "upper-left": 0.1**2 * 2 + 0.2**2 * 2,
            "upper-right": 0.1**2 * 2 + 0.3**2 * 2,
            "lower": 0.5**2 * 2 + 0.6**2 * 2,
            "seat": 0.4**2 * 1,
        }
    )
    assert [(e.kind, e.t_s, e.payload) for e in stored] == [
        (e.kind, e.t_s, fields(e)) for e in a_session()
    ]


def test_tally_ignores_nan_and_time_running_backwards() -> None:
    tally = Tally()
    for event in (
        setpoint(1.0, math.nan, 0.2),
        setpoint(0.5, 0.3, math.inf),  # out of order: no negative time
        setpoint(2.0, -1.0, 0.0),
        AllOff(3.0, True, "x"),
    ):
        tally.add(event)
    assert tally.peak_intensity == 0.3  # NaN and infinity count as 0, never as the maximum
    assert tally.at_intensity_s == pytest.approx(1.0)
    assert tally.last_t_s == 3.0


def test_non_finite_numbers_are_stored_as_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal.open(path) as journal:
        session_id = record(journal, [ClampApplied(1.0, "lower", "cap", math.nan, math.inf)])
        (event,) = journal.events(session_id)
    assert event.payload["wanted"] == "NaN" and event.payload["got"] == "Infinity"
    with sqlite3.connect(path) as conn:  # any JSON reader can read the payload
        assert conn.execute("SELECT json_valid(payload) FROM events").fetchone() == (1,)


def test_events_after_session_ended_are_kept_and_end_can_correct_the_outcome(
    tmp_path: Path,
) -> None:
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        recorder = journal.start_session(program="p", profile="q", endpoint="sim:q")
        recorder(setpoint(1.0, 0.5))
        recorder(SessionEnded(2.0, "done", 0))
        recorder(AllOff(2.0, False, "session over"))  # the stop frame could not be written
        recorder.end("device-error", 3)  # the runner knows better than the last event
        recorder(AllOff(3.0, True, "late"))  # after end: not recorded
        row = journal.session(recorder.id)
        kinds = [e.kind for e in journal.events(recorder.id)]
    assert row is not None and (row.outcome, row.exit_code) == ("device-error", 3)
    assert row.simulated  # a sim: endpoint
    assert kinds == ["setpoint", "session_ended", "all_off"]


def test_a_session_ended_without_an_outcome_is_interrupted(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        with journal.start_session(program="p", profile="q", endpoint="e") as recorder:
            recorder(setpoint(1.0, 0.5))
        other = journal.start_session(program="p", profile="q", endpoint="e")
    # close() ends the recorder left open, as interrupted
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        rows = journal.sessions()
        assert journal.interrupted == ()
    assert [(r.id, r.outcome, r.exit_code) for r in rows] == [
        (recorder.id, INTERRUPTED, None),
        (other.id, INTERRUPTED, None),
    ]


KILLED_WRITER = """
import os, signal, sys
from controller.events import SetpointSent
from controller.journal import Journal
journal = Journal.open(sys.argv[1])
recorder = journal.start_session(program="lumbar-classic", profile="vb6-binary", endpoint="ble:AA")
recorder(SetpointSent(1.0, (3,), (0.3,), None, None, None, 0.3))
recorder(SetpointSent(4.0, (0,), (0.0,), None, None, None, 0.3))
print(recorder.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_session_is_marked_interrupted_on_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    session_id = int(done.stdout)
    with Journal.open(path) as journal:
        assert journal.interrupted == (session_id,)
        row = journal.session(session_id)
        assert len(journal.events(session_id)) == 2
    assert row is not None
    assert (row.outcome, row.exit_code, row.ended_at) == (INTERRUPTED, None, None)
    assert (row.peak_intensity, row.at_intensity_s, row.last_t_s) == (0.3, 3.0, 4.0)
    with Journal.open(path) as journal:
        assert journal.interrupted == ()  # marked once


def test_a_session_running_elsewhere_is_not_marked_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal.open(path) as first:
        recorder = first.start_session(program="p", profile="q", endpoint="e")
        recorder(setpoint(1.0, 0.5))
        with Journal.open(path) as second:  # another connection: `cushion history` meanwhile
            assert second.interrupted == ()
            running = second.session(recorder.id)
            assert running is not None and running.outcome is None
            record(second, [setpoint(0.0, 0.2), SessionEnded(1.0, "done", 0)])
        recorder(SessionEnded(2.0, "stopped", 0))
        recorder.end()
        assert [(r.outcome, r.exit_code) for r in first.sessions()] == [
            ("stopped", 0),
            ("done", 0),
        ]


def test_two_processes_write_at_once_and_every_count_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    Journal.open(path).close()
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.journal_child", str(path), str(seed), "15"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    with Journal.open(path) as journal:
        assert journal.integrity() == "ok"
        assert journal.count() == 30 == journal.count(outcome="done")
        assert journal.completed() == {"program-0": 10, "program-1": 10, "program-2": 10}
        stored = sum(len(journal.events(s.id)) for s in journal.sessions())
    assert stored == sum(len(script(seed, n)) for seed in (1, 2) for n in range(15))


def test_counts_are_exact(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    expected: list[tuple[str, str, str, bool]] = []
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        for _ in range(60):
            program = rng.choice(("lumbar-classic", "lumbar-short", "radiculitis-gentle"))
            profile = rng.choice(("lp4-ascii", "vb6-binary"))
            outcome = rng.choice(("done", "done", "stopped", "device-error", None))
            sim = rng.random() < 0.3
            recorder = journal.start_session(
                program=program,
                profile=profile,
                endpoint="sim:x" if sim else "serial:/dev/ttyUSB0",
            )
            recorder(setpoint(1.0, 0.3))
            if outcome is not None:
                recorder(SessionEnded(2.0, outcome, 0 if outcome != "device-error" else 3))
            recorder.end()
            expected.append((program, profile, outcome or INTERRUPTED, sim))
        assert journal.count() == 60
        for outcome in ("done", "stopped", "device-error", INTERRUPTED):
            assert journal.count(outcome=outcome) == sum(e[2] == outcome for e in expected)
        assert journal.count(outcome="done", program="lumbar-short", simulated=False) == sum(
            e[2] == "done" and e[0] == "lumbar-short" and not e[3] for e in expected
        )
        real_done = [e for e in expected if e[2] == "done" and not e[3]]
        assert journal.completed() == {
            p: sum(e[0] == p for e in real_done) for p in {e[0] for e in real_done}
        }
        assert journal.completed("profile") == {
            p: sum(e[1] == p for e in real_done) for p in {e[1] for e in real_done}
        }
        assert journal.counts("profile", outcome="stopped") == {
            p: n
            for p in ("lp4-ascii", "vb6-binary")
            if (n := sum(e[1] == p and e[2] == "stopped" for e in expected))
        }
        assert journal.count(since=datetime.now(UTC) + timedelta(hours=1)) == 0
        assert journal.count(since=datetime.now(UTC) - timedelta(hours=1)) == 60
        assert [s.id for s in journal.sessions(3)] == [58, 59, 60]  # the last three, oldest first
        # No SessionStarted named the zones: the dose is keyed by zone index.
        assert journal.dose(simulated=False)["0"] == pytest.approx(
            0.09 * len([e for e in expected if not e[3] and e[2] != INTERRUPTED])
        )


@pytest.mark.parametrize(
    ("endpoint", "simulated"),
    [
        ("sim:lp4-ascii", True),
        ("sim+pty:lp4-ascii", True),
        ("ble:F0:CA:00:00:00:01?sim=1", True),
        ("ble:F0:CA:00:00:00:01?timeout=2&sim=1", True),
        ("serial:/dev/ttyUSB0", False),
        ("serial:/dev/sim0", False),
        ("ble:AA:BB:CC:DD:EE:FF", False),
    ],
)
def test_simulator_runs_are_told_apart_by_their_endpoint(endpoint: str, simulated: bool) -> None:
    assert is_simulated(endpoint) is simulated


def test_a_format_1_journal_is_migrated_and_keeps_every_session(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    make_v1_journal(path, 5, unended=1)
    with Journal.open(path) as journal:
        assert journal.version == SCHEMA_VERSION == 2
        rows = journal.sessions()
        assert journal.interrupted == (6,)  # its process died while format 1 was current
        assert [r.outcome for r in rows] == ["done"] * 5 + [INTERRUPTED]
        assert [r.simulated for r in rows] == [False, True, False, True, False, True]
        assert [r.sparing for r in rows] == [True, True, True, False, False, False]
        for row in rows:
            events = script(10_000, row.id - 1)[: len(journal.events(row.id))]
            tally = Tally()
            for event in events:
                tally.add(event)
            assert row.planned_s == 60.0
            assert (row.peak_intensity, row.at_intensity_s, row.last_t_s, row.dose) == (
                tally.peak_intensity,
                tally.at_intensity_s,
                tally.last_t_s,
                tally.dose,
            )
        record(journal, a_session())  # and it takes new sessions
        assert journal.count() == 7 and journal.integrity() == "ok"


def test_the_format_1_schema_in_the_tests_is_the_one_that_shipped() -> None:
    shipped = subprocess.run(
        ["git", "show", "25f91c9:controller/journal.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if shipped.returncode != 0:
        pytest.skip("no git history here")
    v1 = shipped.stdout.split('_V1 = """', 1)[1].split('"""', 1)[0]
    assert v1.strip() in V1_SCHEMA


def _journal_error(path: Path) -> JournalError:
    with pytest.raises(JournalError) as caught:
        Journal.open(path)
    error = caught.value
    assert isinstance(error, InputError) and isinstance(error, CushionError)
    assert error.file == str(path) and error.hint
    assert str(path) in error.describe()
    return error


def test_a_file_from_a_newer_cushion_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    Journal.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    error = _journal_error(path)
    assert f"format {SCHEMA_VERSION + 1}" in error.message and "Upgrade" in (error.hint or "")


def test_another_sqlite_file_and_a_damaged_file_are_refused_untouched(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x)")
    assert "not a Cushion journal" in _journal_error(other).message
    with sqlite3.connect(other) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (0,)

    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    _journal_error(damaged)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"\xff\xfe not a database at all" * 100)
    assert "damaged" in _journal_error(garbage).message
    assert garbage.read_bytes() == b"\xff\xfe not a database at all" * 100


def test_the_data_folder_is_created_and_an_impossible_one_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "journal.sqlite3"
    Journal.open(path).close()
    assert path.is_file()
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "folder" in _journal_error(blocker / "journal.sqlite3").message


READ_ONLY = """
import sys
from controller.journal import Journal, JournalError
try:
    Journal.open(sys.argv[1])
except JournalError as exc:
    print(exc.describe())
"""


def test_a_read_only_journal_is_explained() -> None:
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    setpriv = shutil.which("setpriv")
    if root and setpriv is None:
        pytest.skip("root may write any file, and there is no setpriv to drop root")
    folder = Path(tempfile.mkdtemp(prefix="cushion-ro-"))  # not under root's private tmp
    try:
        path = folder / "j.sqlite3"
        Journal.open(path).close()
        path.chmod(0o444)
        folder.chmod(0o555)
        # As root, the check runs as nobody: root would write the file anyway.
        drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] if setpriv else []
        done = subprocess.run(
            [*(drop if root else []), sys.executable, "-c", READ_ONLY, str(path)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "cannot be written" in done.stdout and str(path) in done.stdout
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_the_path_comes_from_the_environment_or_the_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert default_path().parts[-2:] == ("cushion", "journal.sqlite3")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.sqlite3"))
    assert default_path() == tmp_path / "env.sqlite3"
    with Journal.open() as journal:
        assert journal.path == tmp_path / "env.sqlite3"
    assert (tmp_path / "env.sqlite3").exists()


def test_a_failing_journal_never_breaks_the_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal.open(path, busy_timeout_s=0.05)
    recorder = journal.start_session(program="p", profile="q", endpoint="e")
    recorder(setpoint(1.0, 0.5))
    # Another process holds the write lock past the busy time-out: a real SQLite error.
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with caplog.at_level(logging.ERROR, logger="controller.journal"):
        for t_s in range(2, 6):
            recorder(setpoint(float(t_s), 0.5))  # never raises
        late = journal.start_session(program="p", profile="q", endpoint="e")
    assert not recorder.active and "locked" in (recorder.error or "")
    assert late.error is not None and late.id == 0
    assert journal.error == recorder.error
    assert len([r for r in caplog.records if r.name == "controller.journal"]) == 2  # once each
    blocker.execute("ROLLBACK")
    blocker.close()
    recorder(SessionEnded(9.0, "done", 0))  # still not recorded: the recorder stays off
    recorder.end()
    journal.close()
    with Journal.open(path) as again:
        assert again.interrupted == (recorder.id,)  # the journal missed its end: said so
        assert len(again.events(recorder.id)) == 1


def _history(*args: str) -> tuple[int, str]:
    # Wide enough that no name wraps; 80 columns works too, with wrapped names.
    result = CliRunner(env={"COLUMNS": "160"}).invoke(history, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_history_json_and_table(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal.open(path) as journal:
        first = record(journal, a_session(), sparing=True)
        second = record(journal, [started("lumbar-classic", "vb6-binary"), setpoint(1.0, 0.2)])
    code, out = _history("--journal", str(path), "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(d["id"], d["program"], d["outcome"], d["exit_code"]) for d in lines] == [
        (first, "lumbar-short", "done", 0),
        (second, "lumbar-classic", INTERRUPTED, None),
    ]
    assert lines[0]["peak_intensity"] == 0.6 and lines[0]["sparing"] is True
    assert set(lines[0]) >= {"started_at", "ended_at", "endpoint", "at_intensity_s", "dose"}
    code, out = _history("--journal", str(path), "--json", "--limit", "1")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [second]
    code, out = _history("--journal", str(path))
    assert code == 0
    assert "lumbar-short" in out and "lumbar-classic" in out and "interrupted" in out
    assert "60%" in out and "sparing" in out


def test_history_without_a_journal_creates_none(tmp_path: Path) -> None:
    path = tmp_path / "none.sqlite3"
    code, out = _history("--journal", str(path))
    assert code == 0 and "no sessions yet" in out
    assert _history("--journal", str(path), "--json") == (0, "")
    assert not path.exists() and not (tmp_path / "none.sqlite3-live").exists()


def test_history_explains_a_damaged_journal(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite3"
    path.write_bytes(b"garbage" * 100)
    code, out = _history("--journal", str(path))
    assert code == 2
    assert "error:" in out and "bad.sqlite3" in out and "Move the file aside" in out

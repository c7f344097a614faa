"""The journal kill loop: SIGKILL a process that is writing the journal at random moments.

After every kill the file must pass `PRAGMA integrity_check`, hold every write the child
acknowledged and at most one more (the write in flight), and the unfinished session must be
marked interrupted when the journal is opened again. Kill points are random but seeded; no
assertion depends on how fast the machine is, only on what the child acknowledged.
"""

from __future__ import annotations

import contextlib
import random
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controller.events import SessionEnded
from controller.journal import INTERRUPTED, SCHEMA_VERSION, Journal, Tally
from tests.journal_child import fields, make_v1_journal, script

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261201
KILLS = 100  # on one journal that grows from kill to kill
MIGRATION_KILLS = 20  # each on a fresh copy of a format-1 journal, mid-migration or after
V1_SESSIONS = 300  # finished sessions in the format-1 journal (one more has no end);
# enough that migrating takes tens of milliseconds, a window the kills can hit
WAIT_S = 30.0  # a generous bound for a loaded machine; only a hang would reach it


@dataclass
class Acked:
    """What the child acknowledged before it died."""

    opened: bool = False
    sessions: list[int] = field(default_factory=list)
    events: Counter[int] = field(default_factory=Counter)
    ended: set[int] = field(default_factory=set)


def _spawn(path: Path, seed: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.journal_child", str(path), str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )


def _wait_open(child: subprocess.Popen[bytes]) -> bytes:
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], WAIT_S)
    assert ready, "the child did not open the journal"
    line = child.stdout.readline()
    assert line == b"open\n", (line, child.stderr.read() if child.stderr else b"")
    return line


def _time_to_open(path: Path) -> float:
    """Measure how long a child takes to start and open `path` (spreads the kill points)."""
    start = time.perf_counter()
    with _spawn(path, 0) as child:
        try:
            _wait_open(child)
        finally:
            child.kill()
            child.wait(timeout=WAIT_S)
    return time.perf_counter() - start


def _kill_at_random(
    path: Path, seed: int, rng: random.Random, *, after_open: bool, spawn_s: tuple[float, float]
) -> Acked:
    """Start a writer, SIGKILL it at a random moment and return what it acknowledged.

    `after_open`: wait for the child's `open`, then up to 30 ms; else wait a time in the
    range `spawn_s` from the spawn (start-up, imports, opening, migrating, recovering or
    writing)."""
    with _spawn(path, seed) as child:  # closes the pipes
        head = b""
        try:
            if after_open:
                head = _wait_open(child)
                delay_s = rng.uniform(0.0, 0.03)
            else:
                delay_s = rng.uniform(*spawn_s)
            # Not a timing assertion: the delay only decides where the kill lands.
            select.select([], [], [], delay_s)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=WAIT_S)
        assert child.stdout is not None and child.stderr is not None
        out, err = head + child.stdout.read(), child.stderr.read()
    assert child.returncode == -signal.SIGKILL, (child.returncode, err.decode())
    acked = Acked()
    for line in out.decode().splitlines():
        word, *rest = line.split()
        if word == "open":
            acked.opened = True
        elif word == "session":
            acked.sessions.append(int(rest[0]))
        elif word == "event":
            acked.events[int(rest[0])] += 1
        elif word == "end":
            acked.ended.add(int(rest[0]))
    return acked


Snapshot = dict[int, tuple[str | None, int | None, int]]


def _snapshot(path: Path) -> Snapshot:
    """Every session's outcome, exit code and number of events, read by plain SQLite."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT id, outcome, exit_code, "
            "(SELECT count(*) FROM events WHERE session_id = sessions.id) FROM sessions"
        )
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _verify(path: Path, seed: int, acked: Acked, known: Snapshot) -> tuple[Snapshot, int]:
    """Check the journal after a kill; return the new snapshot and how many writes in
    flight were found committed (0 or 1)."""
    with Journal.open(path) as journal:
        assert journal.integrity() == "ok"
        assert journal.version == SCHEMA_VERSION
        now = _snapshot(path)
        # Nothing committed earlier was lost or changed by this child.
        assert {i: now[i] for i in known} == known
        new = sorted(set(now) - set(known))
        assert new[: len(acked.sessions)] == acked.sessions
        extra = len(new) - len(acked.sessions)  # a session row committed, not acknowledged
        assert extra in (0, 1), (new, acked)
        unended = set()
        for number, session_id in enumerate(new):
            row = journal.session(session_id)
            assert row is not None
            stored = journal.events(session_id)
            expected = script(seed, number)
            assert len(stored) <= len(expected)
            assert [(e.kind, e.t_s, e.payload) for e in stored] == [
                (e.kind, e.t_s, fields(e)) for e in expected[: len(stored)]
            ]
            surplus = len(stored) - acked.events[session_id]
            assert surplus in (0, 1), (session_id, len(stored), acked.events[session_id])
            extra += surplus
            if any(isinstance(e, SessionEnded) for e in expected[: len(stored)]):
                assert (row.outcome, row.exit_code) == ("done", 0)
                assert row.ended_at is not None
            else:
                assert (row.outcome, row.exit_code, row.ended_at) == (INTERRUPTED, None, None)
                unended.add(session_id)
            assert session_id not in acked.ended or row.outcome == "done"
            # The row's totals were committed with each event: they agree with the events.
            tally = Tally()
            for e in stored:
                tally.add_stored(e.t_s, e.kind, e.payload)
            assert (row.peak_intensity, row.at_intensity_s, row.last_t_s, row.dose) == (
                tally.peak_intensity,
                tally.at_intensity_s,
                tally.last_t_s,
                tally.dose,
            )
        assert extra <= 1, "more than the one write in flight was committed unacknowledged"
        assert set(journal.interrupted) - set(known) == unended
        # Exact counts, as sparing mode and course tracking will read them.
        assert journal.count() == len(now)
        outcomes = Counter(o for o, _, _ in now.values())
        assert journal.count(outcome="done") == outcomes["done"]
        assert journal.count(outcome=INTERRUPTED) == outcomes[INTERRUPTED]
        assert None not in outcomes  # no process is alive: nothing is left running
        assert list((path.parent / (path.name + "-live")).iterdir()) == []
        return now, extra


def test_kill_loop_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    path = tmp_path / "journal.sqlite3"
    Journal.open(path).close()
    known: Snapshot = {}
    landed = Counter[str]()
    Journal.open(tmp_path / "calibrate.sqlite3").close()
    spawn_s = (0.0, 1.5 * _time_to_open(tmp_path / "calibrate.sqlite3"))
    for kill in range(KILLS):
        after_open = kill % 4 != 0
        acked = _kill_at_random(path, kill, rng, after_open=after_open, spawn_s=spawn_s)
        known, extra = _verify(path, kill, acked, known)
        landed["before open" if not acked.opened else "after open"] += 1
        landed["in-flight write found committed"] += extra
    print(f"journal kill loop: {KILLS} kills, {dict(landed)}, {len(known)} sessions")
    assert len(known) > 0


@pytest.fixture(scope="module")
def v1_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("v1") / "journal.sqlite3"
    make_v1_journal(path, V1_SESSIONS)
    return path


def test_kill_loop_during_migration(tmp_path: Path, v1_template: Path) -> None:
    reference = tmp_path / "reference.sqlite3"
    shutil.copy(v1_template, reference)
    Journal.open(reference).close()
    known = _snapshot(reference)
    assert [o for o, _, _ in known.values()] == ["done"] * V1_SESSIONS + [INTERRUPTED]
    rng = random.Random(SEED + 1)
    landed = Counter[str]()
    shutil.copy(v1_template, tmp_path / "calibrate.sqlite3")
    # Most kills land around the migration: after start-up, before or just after `open`.
    opened_s = _time_to_open(tmp_path / "calibrate.sqlite3")
    spawn_s = (0.4 * opened_s, 1.4 * opened_s)
    for kill in range(MIGRATION_KILLS):
        path = tmp_path / f"journal-{kill}.sqlite3"
        shutil.copy(v1_template, path)
        acked = _kill_at_random(path, 1000 + kill, rng, after_open=False, spawn_s=spawn_s)
        # A plain SQLite reader sees either format 1 untouched or format 2 complete.
        with contextlib.closing(sqlite3.connect(path)) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        assert version in (1, SCHEMA_VERSION)
        landed[f"format {version}, {'after' if acked.opened else 'before'} open"] += 1
        _verify(path, 1000 + kill, acked, known)
    print(f"journal migration kill loop: {MIGRATION_KILLS} kills, {dict(landed)}")

"""The child of the journal kill loop: writes sessions and events until it is killed.

`python -m tests.journal_child JOURNAL SEED` opens the journal, prints `open`, then loops:
start a session (`session ID`), record its scripted events (`event ID N` after each), and
end it (`end ID`). Every line is written straight to fd 1 after the write it names has
committed, so the parent knows exactly what was acknowledged when its SIGKILL landed.
A third argument N stops it after N sessions (exit 0), for tests of two writers at once.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import sys
from pathlib import Path

from controller.events import (
    AllOff,
    Event,
    PhaseStarted,
    SessionEnded,
    SessionStarted,
    SetpointSent,
)
from controller.journal import Journal, SessionRecorder

ZONES = ("upper-left", "upper-right", "lower", "seat")


def script(seed: int, number: int) -> list[Event]:
    """Return the events of session `number` of child `seed` (the parent rebuilds them)."""
    rng = random.Random(seed * 100_003 + number)
    events: list[Event] = [
        SessionStarted(
            0.0,
            f"program-{number % 3}",
            "lp4-ascii",
            "serial:/dev/null",
            60.0,
            ZONES,
            (0.3, 0.3, 0.8, 0.8),
            0.02,
            10,
        ),
        PhaseStarted(0.0, "intro", "intro", 10.0),
    ]
    t_s = 0.0
    for _ in range(rng.randint(0, 30)):
        t_s += rng.choice((0.1, 0.25, 0.5))
        levels = tuple(rng.randint(0, 10) for _ in ZONES)
        events.append(
            SetpointSent(t_s, levels, tuple(x / 10 for x in levels), None, None, None, 0.5)
        )
    t_s += 0.5
    events += [
        AllOff(t_s, True, "program finished"),
        SessionEnded(t_s, "done", 0, {"message": "program finished"}),
        AllOff(t_s, True, "session over"),
    ]
    return events


# Format 1 exactly as it shipped (controller/journal.py at commit 25f91c9), written by hand
# here so the migration tests start from a real old file, not from the code under test.
V1_SCHEMA = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    program TEXT NOT NULL,
    profile TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    outcome TEXT,
    exit_code INTEGER,
    peak_intensity REAL NOT NULL DEFAULT 0,
    at_intensity_s REAL NOT NULL DEFAULT 0,
    screening_skipped INTEGER NOT NULL DEFAULT 0,
    sparing INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    t_s REAL NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX events_by_session ON events (session_id, id);
PRAGMA application_id = 1129531982;  -- 0x43534A4E, "CSJN"
PRAGMA user_version = 1;
"""


def fields(event: Event) -> dict[str, object]:
    """Return an event's stored payload: its JSON fields without kind and t_s."""
    data = event.to_json()
    del data["kind"], data["t_s"]
    result: dict[str, object] = json.loads(json.dumps(data))
    return result


def make_v1_journal(path: Path, sessions: int, *, unended: int = 1) -> None:
    """Write a format-1 journal: `sessions` finished sessions of scripted events, then
    `unended` sessions with events but no end (their process died under format 1)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(V1_SCHEMA)
    conn.execute("BEGIN")
    for number in range(sessions + unended):
        events = script(10_000, number)
        finished = number < sessions
        if not finished:
            events = events[:-3]
        cur = conn.execute(
            "INSERT INTO sessions (program, profile, endpoint, started_at, ended_at, outcome, "
            "exit_code, peak_intensity, at_intensity_s, sparing) "
            "VALUES (?, 'lp4-ascii', ?, '2026-11-01T10:00:00.000+00:00', ?, ?, ?, ?, ?, ?)",
            (
                f"program-{number % 3}",
                "sim:lp4-ascii" if number % 2 else "serial:/dev/ttyUSB0",
                "2026-11-01T10:30:00.000+00:00" if finished else None,
                "done" if finished else None,
                0 if finished else None,
                max(max(e.intensity) for e in events if isinstance(e, SetpointSent))
                if any(isinstance(e, SetpointSent) for e in events)
                else 0.0,
                0.0,  # format 1 rows as written; format 2 recomputes this from the events
                int(number < 3),
            ),
        )
        conn.executemany(
            "INSERT INTO events (session_id, t_s, kind, payload) VALUES (?, ?, ?, ?)",
            [(cur.lastrowid, e.t_s, e.kind, json.dumps(fields(e))) for e in events],
        )
    conn.execute("COMMIT")
    conn.close()


def _ack(line: str) -> None:
    os.write(1, f"{line}\n".encode())


def _check(recorder: SessionRecorder) -> None:
    if recorder.error is not None:
        sys.stderr.write(f"journal failed: {recorder.error}\n")
        os._exit(1)


def main() -> None:
    """Write until killed (or N sessions are written)."""
    path, seed = sys.argv[1], int(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    # Checkpoints every 5 ms instead of every second, so kills land in them too.
    journal = Journal.open(path, checkpoint_s=0.005)
    _ack("open")
    number = 0
    while limit is None or number < limit:
        events = script(seed, number)
        recorder = journal.start_session(
            program=f"program-{number % 3}", profile="lp4-ascii", endpoint="serial:/dev/null"
        )
        _check(recorder)
        _ack(f"session {recorder.id}")
        for n, event in enumerate(events):
            recorder.record(event)
            _check(recorder)
            _ack(f"event {recorder.id} {n}")
        recorder.end()
        _check(recorder)
        _ack(f"end {recorder.id}")
        number += 1
    journal.close()


if __name__ == "__main__":
    main()

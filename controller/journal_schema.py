"""The journal's file format: its schema text and the migrations between versions."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from controller.journal_recorder import Tally

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

APPLICATION_ID = 0x43534A4E  # "CSJN" in the SQLite header: this file is a Cushion journal

_V1 = """
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
"""


_V2 = """
ALTER TABLE sessions ADD COLUMN simulated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN planned_s REAL;
ALTER TABLE sessions ADD COLUMN last_t_s REAL NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN dose TEXT NOT NULL DEFAULT '{}';
CREATE INDEX sessions_by_outcome ON sessions (outcome, program);
UPDATE sessions SET simulated = 1
    WHERE endpoint LIKE 'sim%' OR endpoint LIKE '%?sim=1%' OR endpoint LIKE '%&sim=1%';
"""


def _script(conn: sqlite3.Connection, script: str) -> None:
    # Statement by statement: executescript() would commit the migration's transaction.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    _script(conn, _V1)


def _migrate_to_2(conn: sqlite3.Connection) -> None:
    """Add simulated, planned_s, last_t_s and dose; fill them in from the stored events."""
    _script(conn, _V2)
    for (session_id,) in conn.execute("SELECT id FROM sessions").fetchall():
        tally = Tally()
        rows = conn.execute(
            "SELECT t_s, kind, payload FROM events WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        for t_s, kind, payload in rows:
            tally.add_stored(t_s, kind, json.loads(payload))
        conn.execute(
            "UPDATE sessions SET planned_s = ?, last_t_s = ?, dose = ?, peak_intensity = ?, "
            "at_intensity_s = ? WHERE id = ?",
            (
                tally.planned_s,
                tally.last_t_s,
                json.dumps(tally.dose, separators=(",", ":")),
                tally.peak_intensity,
                tally.at_intensity_s,
                session_id,
            ),
        )


# _MIGRATIONS[n] turns a version-n file into version n+1, inside the transaction that also
# sets user_version. Append only; never edit a step that has shipped (docs/journal.md).
_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_to_1, _migrate_to_2]
SCHEMA_VERSION = len(_MIGRATIONS)
"""The format version this code writes (and the newest it reads)."""

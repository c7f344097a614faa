"""The session journal: one SQLite row per session and its events, kill-safe and versioned.

Every event is written in its own committed transaction in WAL mode, so killing the process
at any moment loses at most the event being written and never damages the file. The format
is public and versioned (`PRAGMA user_version`); docs/journal.md describes it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

# Public names defined in the modules below are re-exported here (`X as X`), so existing
# `from controller.journal import ...` lines keep working.
from controller.journal_live import (
    _WAL_AUTOCHECKPOINT_PAGES,
    _Checkpointer,
    _drop_lock,
    _owner_dead,
    _take_lock,
)
from controller.journal_live import BUSY_TIMEOUT_S as BUSY_TIMEOUT_S
from controller.journal_live import CHECKPOINT_EVENTS as CHECKPOINT_EVENTS
from controller.journal_live import CHECKPOINT_S as CHECKPOINT_S
from controller.journal_recorder import INTERRUPTED as INTERRUPTED
from controller.journal_recorder import SessionRecorder, Tally, _now, _transaction
from controller.journal_schema import _MIGRATIONS, SCHEMA_VERSION
from controller.journal_schema import APPLICATION_ID as APPLICATION_ID
from protocols.errors import InputError

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "ENV_VAR",
    "SCHEMA_VERSION",
    "EventRow",
    "Journal",
    "JournalError",
    "SessionRecorder",
    "SessionRow",
    "Tally",
    "default_path",
    "is_simulated",
]

logger = logging.getLogger(__name__)

ENV_VAR = "CUSHION_JOURNAL"
"""Environment variable naming the journal file (overrides the user data folder)."""


class JournalError(InputError):
    """The journal file cannot be opened, read or written; says which file and what to do."""


def default_path() -> Path:
    """Return the journal file: $CUSHION_JOURNAL, else the user data folder's journal.sqlite3."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("cushion") / "journal.sqlite3"


def is_simulated(endpoint: str) -> bool:
    """True for a simulator moniker: `sim:...`, `sim+pty:...`, or `ble:...?sim=1`."""
    scheme, _, rest = endpoint.partition(":")
    return scheme.startswith("sim") or "sim=1" in rest.partition("?")[2].split("&")


# --- values --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session as the journal holds it; `outcome` None means it is still running."""

    id: int
    program: str
    profile: str
    endpoint: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    exit_code: int | None
    peak_intensity: float
    at_intensity_s: float
    screening_skipped: bool
    sparing: bool
    simulated: bool
    planned_s: float | None
    last_t_s: float
    dose: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (times as UTC ISO 8601 strings)."""
        return {
            "id": self.id,
            "program": self.program,
            "profile": self.profile,
            "endpoint": self.endpoint,
            "started_at": self.started_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "peak_intensity": self.peak_intensity,
            "at_intensity_s": self.at_intensity_s,
            "screening_skipped": self.screening_skipped,
            "sparing": self.sparing,
            "simulated": self.simulated,
            "planned_s": self.planned_s,
            "last_t_s": self.last_t_s,
            "dose": dict(self.dose),
        }


@dataclass(frozen=True, slots=True)
class EventRow:
    """One journaled event: session time `t_s`, its `kind` and the rest of its fields."""

    session_id: int
    t_s: float
    kind: str
    payload: dict[str, Any]


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# --- the journal ---------------------------------------------------------------------------


def _fail(path: Path, message: str, hint: str, cause: BaseException) -> JournalError:
    error = JournalError(message, file=path, hint=hint)
    error.__cause__ = cause
    return error


_MOVE_ASIDE = (
    "Move the file aside (the next session starts a new journal), or point "
    f"{ENV_VAR} or --journal at another file."
)


class Journal:
    """An open session journal (use `Journal.open`); a context manager that closes it."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, checkpoint_s: float = CHECKPOINT_S
    ) -> None:
        self._conn = conn
        self.path = path
        self._checkpoint_s = checkpoint_s
        self._checkpointer: _Checkpointer | None = None
        self._written = 0  # events recorded through this journal, for checkpoints
        self._live = path.with_name(path.name + "-live")
        self._recorders: list[SessionRecorder] = []
        self._failure: str | None = None
        self.interrupted: tuple[int, ...] = ()
        """Sessions this open found unfinished with no living owner and marked interrupted."""

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        checkpoint_s: float = CHECKPOINT_S,
    ) -> Journal:
        """Open (creating, migrating and recovering as needed) the journal at `path`.

        `path` None means `default_path()`; `busy_timeout_s` is how long a write waits for
        another process's; `checkpoint_s` the longest time between two checkpoints while a
        session records. Raises JournalError for a file that is not a journal, is damaged,
        is from a newer Cushion, or cannot be written.
        """
        where = Path(path).expanduser() if path is not None else default_path()
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            where.with_name(where.name + "-live").mkdir(exist_ok=True)
        except OSError as exc:
            raise _fail(
                where,
                f"cannot create the journal's folder ({exc.strerror or exc}).",
                f"Make {where.parent} writable, or point {ENV_VAR} or --journal elsewhere.",
                exc,
            ) from exc
        try:
            conn = sqlite3.connect(where, timeout=busy_timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise _fail(where, f"cannot open the journal ({exc}).", _MOVE_ASIDE, exc) from exc
        journal = cls(conn, where, checkpoint_s)
        try:
            journal._setup()
        except JournalError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise journal._error(exc) from exc
        except BaseException:
            conn.close()
            raise
        return journal

    def _error(self, exc: sqlite3.Error) -> JournalError:
        text = str(exc)
        if "readonly" in text or "unable to open" in text or "read-only" in text:
            return _fail(
                self.path,
                f"the journal cannot be written ({text}).",
                f"Make the file and its folder writable, or point {ENV_VAR} or --journal at "
                "a writable file.",
                exc,
            )
        if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
            return _fail(
                self.path,
                f"the journal stayed locked by another process ({text}).",
                "Try again; if it persists, look for a stuck cushion process.",
                exc,
            )
        return _fail(
            self.path,
            f"the journal is damaged or not a Cushion journal ({text}).",
            _MOVE_ASIDE,
            exc,
        )

    def _setup(self) -> None:
        conn = self._conn
        # WAL: a commit is a write() to the -wal file, so a killed process loses nothing
        # committed; NORMAL syncs at checkpoints only (power loss may lose the last commits,
        # never the file). FULL would fsync on the event loop for every event.
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise _fail(
                self.path,
                f"the journal could not switch to WAL mode (got {mode}).",
                "Keep the journal on a local disk (not a network share).",
                sqlite3.OperationalError(mode),
            )
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
        self._migrate()
        self._recover()

    def _migrate(self) -> None:
        conn = self._conn
        with _transaction(conn):
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            app = int(conn.execute("PRAGMA application_id").fetchone()[0])
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"the journal has format {version}; this Cushion reads formats up to "
                    f"{SCHEMA_VERSION}.",
                    file=self.path,
                    hint=f"Upgrade Cushion, or point {ENV_VAR} or --journal at another file.",
                )
            if (version == 0 and tables) or (version > 0 and app != APPLICATION_ID):
                raise JournalError(
                    "this SQLite file is not a Cushion journal.", file=self.path, hint=_MOVE_ASIDE
                )
            for step in _MIGRATIONS[version:]:
                step(conn)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _recover(self) -> None:
        conn = self._conn
        marked = []
        # In the write transaction, so no other process is between inserting a session row
        # and committing it (it holds the write lock then) while lock files are judged.
        with _transaction(conn):
            rows = conn.execute("SELECT id FROM sessions WHERE outcome IS NULL").fetchall()
            unended = {int(session_id) for (session_id,) in rows}
            for session_id in sorted(unended):
                if not _owner_dead(self._live, session_id):
                    continue  # running in another process
                conn.execute(
                    "UPDATE sessions SET outcome = ?, exit_code = NULL "
                    "WHERE id = ? AND outcome IS NULL",
                    (INTERRUPTED, session_id),
                )
                _drop_lock(self._live, session_id, None)
                marked.append(session_id)
            # Lock files of sessions that ended, or whose row never got committed.
            for entry in os.scandir(self._live):
                stale = entry.name.isdigit() and int(entry.name) not in unended
                if stale and _owner_dead(self._live, int(entry.name)):
                    _drop_lock(self._live, int(entry.name), None)
        self.interrupted = tuple(marked)
        if marked:
            logger.info("journal %s: marked session(s) %s interrupted", self.path, marked)

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """End any recorder still open (as interrupted) and close the file."""
        for recorder in list(self._recorders):
            recorder.end()
        self._stop_checkpoints()
        self._conn.close()

    def _stop_checkpoints(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None

    @property
    def error(self) -> str | None:
        """The first error a recorder of this journal hit (it then stopped recording)."""
        return self._failure

    def start_session(
        self,
        *,
        program: str,
        profile: str,
        endpoint: str,
        screening_skipped: bool = False,
        sparing: bool = False,
        simulated: bool | None = None,
    ) -> SessionRecorder:
        """Add a session row now and return the recorder for its events.

        `simulated` None means `is_simulated(endpoint)`. Never raises for a
        journal failure: the recorder comes back disabled, with `error` set.
        """
        if simulated is None:
            simulated = is_simulated(endpoint)
        recorder = SessionRecorder(self)
        session_id = 0
        try:
            with _transaction(self._conn):
                cur = self._conn.execute(
                    "INSERT INTO sessions (program, profile, endpoint, started_at, "
                    "screening_skipped, sparing, simulated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        program,
                        profile,
                        endpoint,
                        _now(),
                        int(screening_skipped),
                        int(sparing),
                        int(simulated),
                    ),
                )
                session_id = int(cur.lastrowid or 0)
                # Locked before the row is committed: nobody can see the row without its lock.
                recorder._lock = _take_lock(self._live, session_id)
            recorder.id = session_id
            self._recorders.append(recorder)
            if self._checkpointer is None:
                self._checkpointer = _Checkpointer(self.path, self._checkpoint_s)
        except Exception as exc:
            if recorder._lock is not None:  # locked, but the row was not committed
                _drop_lock(self._live, session_id, recorder._lock)
                recorder._lock = None
            recorder._disable(exc)
        return recorder

    # --- queries ----------------------------------------------------------------------

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            cur = self._conn.cursor()
            cur.row_factory = sqlite3.Row
            return cur.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def sessions(
        self, limit: int | None = None, *, since: datetime | None = None
    ) -> list[SessionRow]:
        """Return the last `limit` sessions (all when None) started at or after `since`,
        oldest first."""
        where, args = _filters(since=since)
        sql = f"SELECT * FROM sessions{where} ORDER BY id DESC"
        rows = (
            self._query(sql + " LIMIT ?", (*args, limit))
            if limit is not None
            else (self._query(sql, args))
        )
        return [_session(r) for r in reversed(rows)]

    def session(self, session_id: int) -> SessionRow | None:
        """Return one session, or None if there is no such id."""
        rows = self._query("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return _session(rows[0]) if rows else None

    def events(self, session_id: int) -> list[EventRow]:
        """Return a session's events in the order they were recorded."""
        rows = self._query(
            "SELECT session_id, t_s, kind, payload FROM events WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        return [EventRow(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def count(
        self,
        *,
        outcome: str | None = None,
        program: str | None = None,
        profile: str | None = None,
        simulated: bool | None = None,
        since: datetime | None = None,
    ) -> int:
        """Return the exact number of sessions matching every filter given (None: any)."""
        where, args = _filters(
            outcome=outcome, program=program, profile=profile, simulated=simulated, since=since
        )
        return int(self._query(f"SELECT count(*) FROM sessions{where}", args)[0][0])

    def counts(
        self,
        by: Literal["program", "profile"] = "program",
        *,
        outcome: str | None = None,
        simulated: bool | None = None,
        since: datetime | None = None,
    ) -> dict[str, int]:
        """Return the exact number of sessions per program (or profile) matching the filters."""
        if by not in ("program", "profile"):
            raise ValueError(f"counts by {by!r}: use 'program' or 'profile'")
        where, args = _filters(outcome=outcome, simulated=simulated, since=since)
        rows = self._query(f"SELECT {by}, count(*) FROM sessions{where} GROUP BY {by}", args)
        return {r[0]: int(r[1]) for r in rows}

    def completed(self, by: Literal["program", "profile"] = "program") -> dict[str, int]:
        """Sessions that ran to the end (outcome "done") on a real cushion, per program.

        What sparing mode and course tracking count: simulator runs are left out.
        """
        return self.counts(by, outcome="done", simulated=False)

    def dose(self, *, since: datetime | None = None, simulated: bool = False) -> dict[str, float]:
        """Return the summed dose per zone (seconds at full intensity, squared) since `since`."""
        where, args = _filters(simulated=simulated, since=since)
        total: dict[str, float] = {}
        for (text,) in self._query(f"SELECT dose FROM sessions{where}", args):
            for zone, value in json.loads(text).items():
                total[zone] = total.get(zone, 0.0) + float(value)
        return total

    def integrity(self) -> str:
        """Run SQLite's full integrity check; "ok" when the file is sound."""
        return "; ".join(str(r[0]) for r in self._query("PRAGMA integrity_check"))

    @property
    def version(self) -> int:
        """The file's format version."""
        return int(self._query("PRAGMA user_version")[0][0])


def _filters(**given: Any) -> tuple[str, tuple[Any, ...]]:
    terms, args = [], []
    for name, value in given.items():
        if value is None:
            continue
        if name == "since":
            terms.append("started_at >= ?")
            args.append(value.astimezone(UTC).isoformat(timespec="milliseconds"))
        else:
            terms.append(f"{name} = ?")
            args.append(int(value) if isinstance(value, bool) else value)
    return (" WHERE " + " AND ".join(terms) if terms else ""), tuple(args)


def _session(r: sqlite3.Row) -> SessionRow:
    started = _when(r["started_at"])
    assert started is not None
    return SessionRow(
        id=r["id"],
        program=r["program"],
        profile=r["profile"],
        endpoint=r["endpoint"],
        started_at=started,
        ended_at=_when(r["ended_at"]),
        outcome=r["outcome"],
        exit_code=r["exit_code"],
        peak_intensity=r["peak_intensity"],
        at_intensity_s=r["at_intensity_s"],
        screening_skipped=bool(r["screening_skipped"]),
        sparing=bool(r["sparing"]),
        simulated=bool(r["simulated"]),
        planned_s=r["planned_s"],
        last_t_s=r["last_t_s"],
        dose=json.loads(r["dose"]),
    )

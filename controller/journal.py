"""The session journal: one SQLite row per session and its events, kill-safe and versioned.

Every event is written in its own committed transaction in WAL mode, so killing the process
at any moment loses at most the event being written and never damages the file. The format
is public and versioned (`PRAGMA user_version`); docs/journal.md describes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from controller.events import (
    AllOff,
    DeviceReset,
    LinkDown,
    Paused,
    SessionEnded,
    SessionStarted,
    SetpointSent,
)
from protocols.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import TracebackType

    from controller.events import Event

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

APPLICATION_ID = 0x43534A4E  # "CSJN" in the SQLite header: this file is a Cushion journal
INTERRUPTED = "interrupted"
BUSY_TIMEOUT_S = 1.0
"""How long a write waits for another process's write (each holds the lock for one event)."""

CHECKPOINT_EVENTS = 250
"""A recording journal copies its WAL into the database after this many events (about
750 pages, under SQLite's default of 1,000), on its own thread..."""
CHECKPOINT_S = 30.0
"""...or after this many seconds, whichever comes first."""
_WAL_AUTOCHECKPOINT_PAGES = 4_000  # a backstop only (16 MB of WAL): the thread does the work

_OFF_EVENTS = (AllOff, Paused, LinkDown, DeviceReset, SessionEnded)


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


# --- the schema and its migrations -------------------------------------------------------

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


def _fraction(x: Any) -> float:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return 0.0
    return min(1.0, max(0.0, value)) if math.isfinite(value) else 0.0


_OFF_KINDS = frozenset({"all_off", "paused", "link_down", "device_reset", "session_ended"})


@dataclass(slots=True)
class Tally:
    """A session's totals, fed one event at a time (in session-time order).

    Outputs hold each SetpointSent's intensities until the next setpoint, or until an
    all-off, pause, link loss, device reset or session end switches them off.
    `at_intensity_s` counts the time any zone is above 0; `dose` is, per zone, the time
    integral of intensity squared (seconds at full intensity); `peak_intensity` is the
    highest zone intensity sent (0..1).
    """

    peak_intensity: float = 0.0
    at_intensity_s: float = 0.0
    last_t_s: float = 0.0
    planned_s: float | None = None
    dose: dict[str, float] = field(default_factory=dict)
    zones: tuple[str, ...] = ()
    _levels: tuple[float, ...] = ()
    _since_s: float = 0.0

    def add(self, event: Event) -> None:
        """Account for one event."""
        if isinstance(event, SetpointSent):
            self._step(event.t_s, levels=event.intensity)
        elif isinstance(event, SessionStarted):
            self._step(event.t_s, zones=event.zones, planned_s=event.duration_s)
        else:
            self._step(event.t_s, off=isinstance(event, _OFF_EVENTS))

    def add_stored(self, t_s: float, kind: str, payload: dict[str, Any]) -> None:
        """Account for one event as the journal stores it (kind and JSON fields)."""
        if kind == "setpoint":
            self._step(t_s, levels=payload.get("intensity") or ())
        elif kind == "session_started":
            duration = payload.get("duration_s")
            self._step(
                t_s,
                zones=tuple(str(z) for z in payload.get("zones") or ()),
                planned_s=float(duration) if isinstance(duration, int | float) else None,
            )
        else:
            self._step(t_s, off=kind in _OFF_KINDS)

    def _step(
        self,
        t_s: float,
        *,
        levels: Sequence[Any] | None = None,
        zones: tuple[str, ...] | None = None,
        planned_s: float | None = None,
        off: bool = False,
    ) -> None:
        t_s = t_s if math.isfinite(t_s) else self.last_t_s
        dt = t_s - self._since_s
        if dt > 0 and any(x > 0 for x in self._levels):
            self.at_intensity_s += dt
            for i, x in enumerate(self._levels):
                if x > 0:
                    zone = self.zones[i] if i < len(self.zones) else str(i)
                    self.dose[zone] = self.dose.get(zone, 0.0) + x * x * dt
        self._since_s = max(self._since_s, t_s)
        self.last_t_s = max(self.last_t_s, t_s)
        if zones is not None:
            self.zones = zones
            self.planned_s = planned_s
        if levels is not None:
            self._levels = tuple(_fraction(x) for x in levels)
            self.peak_intensity = max(self.peak_intensity, *self._levels, 0.0)
        elif off:
            self._levels = ()


def _kind(event: Event) -> str:
    try:
        return event.kind
    except KeyError:  # an event class added without a JSON name
        return type(event).__name__


def _sanitise(value: Any) -> Any:
    # JSON has no NaN or infinity; keep them readable instead of writing invalid JSON.
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): _sanitise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitise(v) for v in value]
    return value


def _payload(event: Event) -> str:
    data = event.to_json()
    data.pop("kind", None)
    data.pop("t_s", None)
    try:
        return json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)
    except ValueError:
        return json.dumps(_sanitise(data), separators=(",", ":"), allow_nan=False, default=str)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, so a busy database waits (busy_timeout)
    # instead of failing half-way when a read would have to become a write.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


# --- the live-session lock -----------------------------------------------------------------
# A running session holds an advisory lock on its own small file; the kernel drops it when
# the process dies, however it dies. On open, a session with no end whose lock can be taken
# belongs to a dead process and is marked interrupted; one whose lock is held is running in
# another process and is left alone.

if sys.platform == "win32":  # pragma: no cover - no flock; see docs/journal.md

    def _take_lock(folder: Path, session_id: int) -> int | None:
        return None

    def _owner_dead(folder: Path, session_id: int) -> bool:
        return True

else:
    import fcntl

    def _take_lock(folder: Path, session_id: int) -> int | None:
        fd = os.open(folder / str(session_id), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _owner_dead(folder: Path, session_id: int) -> bool:
        try:
            fd = os.open(folder / str(session_id), os.O_RDWR)
        except FileNotFoundError:
            # The lock file exists before the session row is committed and is removed only
            # after its end is committed, so a row with no end and no file has no owner.
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return True


def _drop_lock(folder: Path, session_id: int, fd: int | None) -> None:
    with contextlib.suppress(OSError):
        (folder / str(session_id)).unlink()
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


class _Checkpointer:
    """Copies the WAL into the database file when poked or every `interval_s`, on its own
    thread.

    A checkpoint syncs the files to disk (milliseconds, more on an SD card); left to SQLite's
    automatic checkpoint it would run inside whichever commit crosses the threshold, that
    is, on the event loop that is driving the cushion. A PASSIVE checkpoint never takes the
    writer's lock, and a kill in the middle of one loses nothing (the WAL is still there).
    It runs once per few hundred events, not every second: while its sync is under way,
    the loop's next commit can still wait for the disk (measured in docs/journal.md).
    """

    def __init__(self, path: Path, interval_s: float) -> None:
        self.path = path
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(
            target=self._run, name="cushion-journal-checkpoint", daemon=True
        )
        self._thread.start()

    def poke(self) -> None:
        """Ask for a checkpoint now (returns at once)."""
        self._wake.set()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            logger.warning("journal %s: no checkpoint thread (%s)", self.path, exc)
            return
        with contextlib.closing(conn):
            while True:
                self._wake.wait(self.interval_s)
                self._wake.clear()
                if self._stop:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or failing: SQLite's backstop remains
                    logger.debug("journal %s: checkpoint skipped (%s)", self.path, exc)

    def stop(self) -> None:
        """Stop the thread and wait for it (at most one checkpoint)."""
        self._stop = True
        self._wake.set()
        self._thread.join()


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


@dataclass(eq=False)
class SessionRecorder:
    """Writes one session's events; an `Emit` consumer (call it with each event).

    Each event is one committed transaction together with the session row's totals, so the
    row always agrees with its events. A journal failure is logged once and disables the
    recorder (`error` says why); it never raises into the session.
    """

    journal: Journal
    id: int = 0
    error: str | None = None
    tally: Tally = field(default_factory=Tally)
    _lock: int | None = None
    _done: bool = False

    def __call__(self, event: Event) -> None:
        self.record(event)

    @property
    def active(self) -> bool:
        """True while events are being written."""
        return not self._done and self.error is None

    def record(self, event: Event) -> None:
        """Write one event (and, for SessionEnded, the session's outcome and exit code)."""
        if not self.active:
            return
        try:
            self._write(event)
        except Exception as exc:
            self._disable(exc)

    def _write(self, event: Event) -> None:
        conn = self.journal._conn
        self.tally.add(event)
        t = self.tally
        sets = "peak_intensity = ?, at_intensity_s = ?, last_t_s = ?, dose = ?"
        args: list[Any] = [
            t.peak_intensity,
            t.at_intensity_s,
            t.last_t_s,
            json.dumps(t.dose, separators=(",", ":")),
        ]
        if isinstance(event, SessionStarted):
            sets += ", program = ?, profile = ?, endpoint = ?, planned_s = ?"
            args += [event.program, event.profile, event.endpoint, t.planned_s]
        elif isinstance(event, SessionEnded):
            sets += ", ended_at = ?, outcome = ?, exit_code = ?"
            args += [_now(), event.outcome, event.exit_code]
        with _transaction(conn):
            conn.execute(
                "INSERT INTO events (session_id, t_s, kind, payload) VALUES (?, ?, ?, ?)",
                (self.id, event.t_s, _kind(event), _payload(event)),
            )
            conn.execute(f"UPDATE sessions SET {sets} WHERE id = ?", (*args, self.id))
        journal = self.journal
        journal._written += 1
        if journal._written % CHECKPOINT_EVENTS == 0 and journal._checkpointer is not None:
            journal._checkpointer.poke()

    def end(self, outcome: str | None = None, exit_code: int | None = None) -> None:
        """Finish the session: record `outcome` and `exit_code` if given, else keep what
        SessionEnded recorded, else mark it interrupted. Later events are not recorded."""
        if self._done:
            return
        self._done = True
        try:
            if self.error is None and self.id:
                conn = self.journal._conn
                with _transaction(conn):
                    if outcome is not None:
                        conn.execute(
                            "UPDATE sessions SET outcome = ?, exit_code = ?, "
                            "ended_at = coalesce(ended_at, ?) WHERE id = ?",
                            (outcome, exit_code, _now(), self.id),
                        )
                    else:
                        conn.execute(
                            "UPDATE sessions SET outcome = ?, exit_code = NULL "
                            "WHERE id = ? AND outcome IS NULL",
                            (INTERRUPTED, self.id),
                        )
        except Exception as exc:
            self._disable(exc)
        finally:
            if self.id:
                # Only after the end is committed: while its lock is held, no other process
                # takes the session for a dead one.
                _drop_lock(self.journal._live, self.id, self._lock)
                self._lock = None
            with contextlib.suppress(ValueError):
                self.journal._recorders.remove(self)
            if not self.journal._recorders:
                self.journal._stop_checkpoints()

    def __enter__(self) -> SessionRecorder:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.end()

    def _disable(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = f"{type(exc).__name__}: {exc}"
            self.journal._failure = self.journal._failure or self.error
            logger.error(
                "session journal %s failed; this session is no longer recorded: %s",
                self.journal.path,
                self.error,
            )

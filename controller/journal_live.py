"""A running session's liveness: its lock file, and the thread that checkpoints the WAL."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

# The journal's one logger: records from every journal module keep this name.
logger = logging.getLogger("controller.journal")

BUSY_TIMEOUT_S = 1.0
"""How long a write waits for another process's write (each holds the lock for one event)."""

CHECKPOINT_EVENTS = 250
"""A recording journal copies its WAL into the database after this many events (about
750 pages, under SQLite's default of 1,000), on its own thread..."""
CHECKPOINT_S = 30.0
"""...or after this many seconds, whichever comes first."""
_WAL_AUTOCHECKPOINT_PAGES = 4_000  # a backstop only (16 MB of WAL): the thread does the work


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

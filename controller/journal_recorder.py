"""Recording one session: its events written as they happen, and the totals kept on its row."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from controller.events import (
    AllOff,
    DeviceReset,
    LinkDown,
    Paused,
    SessionEnded,
    SessionStarted,
    SetpointSent,
)
from controller.journal_live import CHECKPOINT_EVENTS, _drop_lock

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from types import TracebackType

    from controller.events import Event
    from controller.journal import Journal

# The journal's one logger: records from every journal module keep this name.
logger = logging.getLogger("controller.journal")

INTERRUPTED = "interrupted"

_OFF_EVENTS = (AllOff, Paused, LinkDown, DeviceReset, SessionEnded)


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

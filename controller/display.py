"""What the user sees while a session runs: a live rich panel, plain lines, or JSON lines."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from controller.events import (
    AllOff,
    ClampApplied,
    Event,
    Fault,
    Paused,
    PhaseStarted,
    Resumed,
    SessionEnded,
    SessionStarted,
    SetpointSent,
    StepStarted,
    StopRequested,
)

if TYPE_CHECKING:
    from types import TracebackType


class JsonLines:
    """Writes every event as one JSON object per line."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def __call__(self, event: Event) -> None:
        self.out.write(json.dumps(event.to_json(), separators=(",", ":")) + "\n")


def all_off_text(event: AllOff) -> str:
    """Say what really happened to the outputs: sent, confirmed, or what the cushion will do."""
    if not event.sent:
        return f"could not send the all-off ({event.reason}): {event.fallback}"
    if event.confirmed is False:
        return f"all-off sent but not confirmed by the cushion ({event.reason})"
    return f"all outputs off ({event.reason})"


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


class LiveDisplay:
    """A live panel: program, phase, technique, time left and a bar per zone."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.program = self.profile = self.phase = self.technique = ""
        self.duration_s = 0.0
        self.t_s = 0.0
        self.zones: tuple[str, ...] = ()
        self.caps: tuple[float, ...] = ()
        self.levels: tuple[float, ...] = ()
        self.status = "starting"
        self.notes: list[str] = []
        self._live = Live(
            console=self.console, refresh_per_second=4, transient=False, get_renderable=self.render
        )

    def __enter__(self) -> LiveDisplay:
        self._live.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.__exit__(et, e, tb)

    def __call__(self, event: Event) -> None:
        self.t_s = max(self.t_s, event.t_s)
        if isinstance(event, SessionStarted):
            self.program, self.profile = event.program, event.profile
            self.duration_s, self.zones, self.caps = event.duration_s, event.zones, event.caps
            self.levels = (0.0,) * len(event.zones)
            self.status = "running"
        elif isinstance(event, PhaseStarted):
            self.phase = event.name
        elif isinstance(event, StepStarted):
            self.technique = event.technique
        elif isinstance(event, SetpointSent):
            self.levels = event.intensity
        elif isinstance(event, ClampApplied) and event.wanted - event.got >= 0.01:
            # The last few clamps a person could feel, newest last.
            self.notes = [
                *self.notes[-2:],
                f"{_clock(event.t_s)} {event.zone}: {event.rule} "
                f"lowered {event.wanted:.0%} to {event.got:.0%}",
            ]
        elif isinstance(event, Paused):
            self.status = f"paused: {event.reason}"
        elif isinstance(event, Resumed):
            self.status = "running (ramping up again)"
        elif isinstance(event, StopRequested):
            self.status = f"stopping: {event.reason}"
        elif isinstance(event, AllOff):
            self.levels = (0.0,) * len(self.zones)
            if not event.sent or event.confirmed is False:
                self.status = all_off_text(event)
        elif isinstance(event, Fault):
            self.status = f"fault: {event.message}"
        elif isinstance(event, SessionEnded):
            self.status = event.outcome

    def render(self) -> Group:
        """Build the panel for the current state."""
        head = Text.assemble(
            (self.program, "bold"),
            f" on {self.profile}   ",
            (f"{self.phase} / {self.technique}", "cyan"),
            f"   {_clock(self.t_s)} of {_clock(self.duration_s)}, "
            f"{_clock(self.duration_s - self.t_s)} left   ",
            (self.status, "yellow"),
        )
        table = Table.grid(padding=(0, 1))
        for zone, level, cap in zip(self.zones, self.levels, self.caps, strict=False):
            table.add_row(
                f"{zone:>12}",
                ProgressBar(total=1.0, completed=level, width=40),
                f"{level:4.0%}",
                Text(f"cap {cap:.0%}", "dim"),
            )
        return Group(head, table, *(Text(n, "dim") for n in self.notes))


class PlainLines:
    """One line per phase, step, pause, stop and end, for logs and non-terminals."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)

    def __call__(self, event: Event) -> None:
        line = None
        if isinstance(event, SessionStarted):
            line = (
                f"{event.program} on {event.profile} ({event.endpoint}), {_clock(event.duration_s)}"
            )
        elif isinstance(event, PhaseStarted):
            line = f"{_clock(event.t_s)}  phase: {event.name}"
        elif isinstance(event, StepStarted):
            line = f"{_clock(event.t_s)}    {event.technique} x{event.repetitions}"
        elif isinstance(event, Paused | Resumed | StopRequested | Fault):
            why = getattr(event, "reason", "") or getattr(event, "message", "")
            line = f"{_clock(event.t_s)}  {event.kind}: {why}"
        elif isinstance(event, AllOff):
            line = f"{_clock(event.t_s)}  {all_off_text(event)}"
        elif isinstance(event, SessionEnded):
            line = f"{_clock(event.t_s)}  session {event.outcome} (exit {event.exit_code})"
        if line:
            self.console.print(line)

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
    ScaleChanged,
    SessionEnded,
    SessionStarted,
    SetpointSent,
    StepStarted,
    StopRequested,
)
from controller.keys import FOOTER
from controller.words import phase_name, technique_name

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
    if event.still_on:
        return (f"all-off sent but the cushion did not obey it ({event.reason}): "
                f"{event.still_on}; {event.fallback}")
    if event.confirmed is False:
        return f"all-off sent but not confirmed by the cushion ({event.reason})"
    return f"all outputs off ({event.reason})"


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


# A plan clamp is worth a note when it takes away this much at one instant (a step of a
# 10-level cushion): smaller cuts are covered by the limits said once at the start.
NOTE_MIN_CUT = 0.10

RULE_WORDS: dict[str, str] = {
    "overall cap": "the overall limit",
    "kidney-zone cap": "the kidney limit",
    "sparing mode": "sparing mode",
    "introductory-phase cap": "the gentle start",
    "final ramp-down": "the calm ending",
    "ramp rule": "the slow rise",
}

OUTCOME_WORDS: dict[str, str] = {
    "done": "finished",
    "stopped": "stopped",
    "interrupted": "interrupted",
    "device-error": "stopped: the cushion failed",
    "safety": "stopped for safety",
}


def join_areas(names: list[str]) -> str:
    """Join body-area names, one name for a left and right pair ("lower back")."""
    out: list[str] = []
    for name in names:
        base, _, side = name.rpartition(", ")
        pair = f"{base}, {'right' if side == 'left' else 'left'}"
        if side in ("left", "right") and pair in out:
            out[out.index(pair)] = base
        else:
            out.append(name)
    return out[0] if len(out) == 1 else ", ".join(out[:-1]) + " and " + out[-1]


def limits_in_words(event: SessionStarted) -> list[str]:
    """Say the limits of a session in plain words, from the caps and rules it started with."""
    lim = event.limits
    lines: list[str] = []
    names = event.zone_names or event.zones
    kidney = [
        (n, c)
        for n, c, r in zip(names, event.caps, event.cap_rules, strict=False)
        if r == "kidney-zone cap"
    ]
    if kidney:
        area = join_areas([n for n, _ in kidney])
        top = max(c for _, c in kidney)
        lines.append(f"{area}: over the kidneys, so kept gentle, at most {top:.0%}")
    if "sparing_max_intensity" in lim:
        lines.append(
            f"sparing mode for the first sessions: at most {lim['sparing_max_intensity']:.0%}"
        )
    if "max_intensity" in lim:
        lines.append(f"never more than {lim['max_intensity']:.0%} of the cushion's strength")
    if "intro_min_s" in lim and "intro_max_intensity" in lim:
        lines.append(
            f"first {_span(lim['intro_min_s'])} and the warm-up: gentle start, "
            f"at most {lim['intro_max_intensity']:.0%}"
        )
    if "ramp_per_s" in lim:
        lines.append(
            f"strength rises slowly, at most {lim['ramp_per_s'] * 5:.0%} more every 5 s, "
            "and again from zero after a pause"
        )
    if lim.get("final_ramp_down_s"):
        lines.append(f"over the last {_span(lim['final_ramp_down_s'])} it fades out to nothing")
    return lines


def _span(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} minutes"
    if seconds == 60:
        return "minute"
    return f"{seconds:g} s"


class LiveDisplay:
    """A live panel for people: program, phase and technique in words, time left and a bar
    for the session, a bar per body area, the limits said once, and the keys."""

    def __init__(self, console: Console | None = None, *, keys: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.keys = keys
        self.program = self.profile = self.phase = self.technique = ""
        self.duration_s = 0.0
        self.t_s = 0.0
        self.zones: tuple[str, ...] = ()
        self.names: tuple[str, ...] = ()
        self.caps: tuple[float, ...] = ()
        self.levels: tuple[float, ...] = ()
        self.limits: list[str] = []
        self.scale = 1.0
        self.status = "starting"
        self.notes: list[str] = []
        self._paused_at: float | None = None
        self._paused_s = 0.0
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

    @property
    def position_s(self) -> float:
        """Return how far into the program the session is (pauses do not count)."""
        held = self._paused_s + (0.0 if self._paused_at is None else self.t_s - self._paused_at)
        return min(self.duration_s, max(0.0, self.t_s - held))

    def _continue_hint(self) -> str:
        return " - press space to continue" if self.keys else ""

    def __call__(self, event: Event) -> None:
        self.t_s = max(self.t_s, event.t_s)
        if isinstance(event, SessionStarted):
            self.program, self.profile = event.program, event.profile
            self.duration_s, self.zones, self.caps = event.duration_s, event.zones, event.caps
            self.names = event.zone_names or event.zones
            self.levels = (0.0,) * len(event.zones)
            self.limits = limits_in_words(event)
            self.status = "running"
        elif isinstance(event, PhaseStarted):
            self.phase = phase_name(event.phase)
        elif isinstance(event, StepStarted):
            times = f" ({event.repetitions} times)" if event.repetitions > 1 else ""
            self.technique = f"{technique_name(event.technique)}{times}"
        elif isinstance(event, SetpointSent):
            self.levels = event.intensity
        elif isinstance(event, ClampApplied):
            self._clamp(event)
        elif isinstance(event, ScaleChanged):
            self.scale = event.factor
        elif isinstance(event, Paused):
            if self._paused_at is None:
                self._paused_at = event.t_s
            why = "" if event.reason == "paused by the user" else f": {event.reason}"
            self.status = f"paused{why}{self._continue_hint()}"
        elif isinstance(event, Resumed):
            if self._paused_at is not None:
                self._paused_s += event.t_s - self._paused_at
                self._paused_at = None
            self.status = "running (starting gently again)"
        elif isinstance(event, StopRequested):
            how = "stopping now" if event.emergency else "stopping gently"
            self.status = f"{how}: {event.reason}"
        elif isinstance(event, AllOff):
            self.levels = (0.0,) * len(self.zones)
            if not event.sent or event.confirmed is False:
                self.status = all_off_text(event)
        elif isinstance(event, Fault):
            self.status = f"fault: {event.message}"
        elif isinstance(event, SessionEnded):
            if self._paused_at is not None:
                self._paused_s += event.t_s - self._paused_at
                self._paused_at = None
            words = OUTCOME_WORDS.get(event.outcome, event.outcome)
            why = str(event.details.get("message", ""))
            self.status = f"{words}: {why}" if why and event.outcome != "done" else words

    def _clamp(self, event: ClampApplied) -> None:
        """Keep a note of a cut a person would feel (the plan's, at one instant)."""
        if event.layer != "plan" or event.wanted - event.got < NOTE_MIN_CUT:
            return  # the device's ramp after a pause is said by the status line
        try:
            name = self.names[self.zones.index(event.zone)]
        except ValueError:
            name = event.zone
        rule = RULE_WORDS.get(event.rule, event.rule)
        self.notes = [
            *self.notes[-1:],
            f"{_clock(event.t_s)} {name}: the program asks {event.wanted:.0%}, "
            f"{rule} keeps it at {event.got:.0%}",
        ]

    def render(self) -> Group:
        """Build the panel for the current state."""
        doing = " - ".join(p for p in (self.phase, self.technique) if p)
        head = Text.assemble(
            (self.program, "bold"),
            f" on {self.profile}   ",
            (doing, "cyan"),
            "   ",
            (self.status, "bold yellow" if "paused" in self.status else "yellow"),
        )
        pos = self.position_s
        progress = Table.grid(padding=(0, 1))
        progress.add_row(
            ProgressBar(total=max(self.duration_s, 1e-9), completed=pos, width=40),
            f"{_clock(pos)} of {_clock(self.duration_s)}, {_clock(self.duration_s - pos)} left",
        )
        table = Table.grid(padding=(0, 1))
        width = max((len(n) for n in self.names), default=0)
        for name, level in zip(self.names, self.levels, strict=False):
            table.add_row(
                f"{name:>{width}}",
                ProgressBar(total=1.0, completed=level, width=30),
                f"{level:4.0%}",
            )
        strength = "as planned" if self.scale >= 1.0 else "of the plan"
        parts: list[Text | Table] = [
            head,
            progress,
            table,
            Text(f"strength: {self.scale:.0%} {strength}"),
        ]
        if self.limits:
            parts.append(Text("limits:", "dim"))
            parts.extend(Text(f"  {line}", "dim") for line in self.limits)
        parts.extend(Text(n, "dim") for n in self.notes)
        footer = FOOTER if self.keys else "Ctrl-C stop gently (twice: now)"
        parts.append(Text(footer, "reverse"))
        return Group(*parts)


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

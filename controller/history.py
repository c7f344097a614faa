"""`cushion history`: past sessions from the journal, as a table or one JSON object per line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from datetime import datetime

    from controller.course import CourseSettings
    from controller.journal import SessionRow

EXIT_BAD_INPUT = 2  # as controller.session.EXIT_BAD_INPUT; not imported to keep this light


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


def _outcome(row: SessionRow) -> str:
    # The exit code follows from the outcome (docs/journal.md); --json carries it.
    return "running" if row.outcome is None else row.outcome


def _notes(row: SessionRow) -> str:
    notes = []
    if row.sparing:
        notes.append("sparing")
    if row.screening_skipped:
        notes.append("no screening")
    if row.simulated:
        notes.append("sim")
    return ", ".join(notes)


_WHOLE = frozenset({"#", "started", "program", "cushion", "played", "peak", "on", "course",
                    "dose"})
_RIGHT = frozenset({"#", "peak", "course", "dose"})
WIDE = 100
"""From this many columns on, the table also shows the cushion, time on and dose."""


def table(rows: list[SessionRow], numbers: dict[int, int] | None = None, *,
          width: int = WIDE) -> Table:
    """Build the plain-text table `cushion history` prints (local times; the device is in
    --json). `numbers` gives each counted session's number in its course
    (`controller.course.numbers`): "-" marks a session not counted (under 10 minutes on).
    Under `WIDE` columns the cushion, time on and dose are left out (--json has them)."""
    from controller.course import session_dose

    numbers = numbers or {}
    wide = width >= WIDE
    out = Table(box=None, padding=(0, 1), pad_edge=False)
    heads = ["#", "started", "program", "cushion", "played", "peak", "on", "course", "dose",
             "outcome", "notes"]
    if not wide:
        heads = [h for h in heads if h not in ("cushion", "on", "dose")]
    for name in heads:
        # Numbers, times and names stay whole; the notes wrap when the terminal is narrow.
        out.add_column(name, no_wrap=name in _WHOLE,
                       justify="right" if name in _RIGHT else "left", overflow="fold")
    for row in rows:
        played = _clock(row.last_t_s)
        if row.planned_s and played != _clock(row.planned_s):  # a whole program: its length
            played += f"/{_clock(row.planned_s)}"
        cells = {
            "#": str(row.id),
            "started": row.started_at.astimezone().strftime("%d %b %H:%M"),
            "program": row.program,
            "cushion": row.profile,
            "played": played,
            "peak": f"{row.peak_intensity:.0%}",
            "on": _clock(row.at_intensity_s),
            "course": str(numbers[row.id]) if row.id in numbers else "-",
            "dose": f"{session_dose(row):.0f}",
            "outcome": _outcome(row),
            "notes": _notes(row),
        }
        out.add_row(*(cells[h] for h in heads))
    return out


@click.command("history")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per session.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Show the last N sessions; 0 shows all.",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Journal file (default: $CUSHION_JOURNAL, else the user data folder).",
)
def history(as_json: bool, limit: int, journal_path: Path | None) -> None:
    """Show past sessions: when, what ran, how strong, how it ended."""
    from controller.course import numbers
    from controller.journal import Journal, JournalError, default_path

    path = journal_path.expanduser() if journal_path is not None else default_path()
    err = Console(stderr=True, highlight=False)
    if not path.exists():
        # Reading history must not create a journal; no file simply means no sessions yet.
        if not as_json:
            err.print(f"no sessions yet (journal: {path})")
        return
    try:
        with Journal.open(path) as journal:
            every = journal.sessions()  # all: a course is numbered from its first session
    except JournalError as exc:
        err.print(f"[bold red]error:[/] {exc.describe()}", markup=True, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    settings = _settings(err)
    numbered = numbers(every, settings)
    rows = every[-limit:] if limit else every
    if as_json:
        for row in rows:
            click.echo(json.dumps(as_json_row(row, numbered), separators=(",", ":")))
        return
    if not rows:
        err.print(f"no sessions yet (journal: {path})")
        return
    console = Console(highlight=False)
    console.print(table(rows, numbered, width=console.width))
    for line in summary(every, numbered, settings):
        console.print(line, markup=False, soft_wrap=True)


def as_json_row(row: SessionRow, numbered: dict[int, int]) -> dict[str, object]:
    """Return a session's `--json` object: the journal's columns, then the course fields."""
    from controller.course import counts, session_dose

    data = row.to_json()
    data["counted"] = counts(row)
    data["course_session"] = numbered.get(row.id)
    data["session_dose_s"] = session_dose(row)
    return data


def summary(
    rows: list[SessionRow],
    numbered: dict[int, int],
    settings: CourseSettings,
    now: datetime | None = None,
) -> list[str]:
    """Return the lines under the table: each course's progress and today's use."""
    from datetime import datetime

    from controller.course import COURSE_LENGTH, session_dose, start_of_day

    now = (now or datetime.now()).astimezone()
    lo, hi = COURSE_LENGTH
    lines = []
    for simulated, what in ((False, "Course"), (True, "Simulator course")):
        mine = [r for r in rows if r.simulated == simulated and r.id in numbered]
        if not mine:
            continue
        last = mine[-1]
        n = numbered[last.id]
        if (now - last.started_at).days >= settings.new_course_after_days:
            lines.append(f"{what}: the last one had {n} session(s); the next starts a new one.")
            continue
        line = f"{what}: session {n} of a course of about {lo}-{hi}"
        if n <= settings.sparing_sessions:
            line += f" (sparing session {n} of {settings.sparing_sessions})"
        lines.append(line + ".")
    midnight = start_of_day(now)
    today = [r for r in rows if not r.simulated and r.started_at >= midnight]
    if today:
        counted = sum(1 for r in today if r.id in numbered)
        dose = sum(session_dose(r) for r in today)
        lines.append(
            f"Today on a cushion: {counted} of {settings.max_sessions_per_day} session(s), "
            f"vibration dose {dose:.0f} of {settings.daily_dose_s:.0f} s."
        )
    return lines


def _settings(err: Console) -> CourseSettings:
    from controller.course import DEFAULT_COURSE, settings_in_use
    from protocols.errors import InputError

    try:
        return settings_in_use()
    except InputError as exc:  # history still reads; the course is numbered by the defaults
        err.print(f"warning: {exc.describe()} Using the default course settings.",
                  markup=False, soft_wrap=True)
        return DEFAULT_COURSE

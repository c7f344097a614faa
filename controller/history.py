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


def table(rows: list[SessionRow]) -> Table:
    """Build the plain-text table `cushion history` prints (local times; the device is in
    --json, left out here to fit 80 columns)."""
    out = Table(box=None, padding=(0, 1), pad_edge=False)
    for name in ("#", "started", "program", "cushion", "played", "peak", "on", "outcome", "notes"):
        # Numbers and times stay whole; names wrap when the terminal is narrow.
        out.add_column(
            name,
            no_wrap=name in ("#", "started", "played", "peak", "on"),
            justify="right" if name in ("#", "peak") else "left",
            overflow="fold",
        )
    for row in rows:
        played = _clock(row.last_t_s)
        if row.planned_s:
            played += f"/{_clock(row.planned_s)}"
        out.add_row(
            str(row.id),
            row.started_at.astimezone().strftime("%d %b %H:%M"),
            row.program,
            row.profile,
            played,
            f"{row.peak_intensity:.0%}",
            _clock(row.at_intensity_s),
            _outcome(row),
            _notes(row),
        )
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
            rows = journal.sessions(limit or None)
    except JournalError as exc:
        err.print(f"[bold red]error:[/] {exc.describe()}", markup=True, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.to_json(), separators=(",", ":")))
        return
    if not rows:
        err.print(f"no sessions yet (journal: {path})")
        return
    Console(highlight=False).print(table(rows))

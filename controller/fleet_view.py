"""The fleet view in words: a table of nodes and cushions for 80x24, and one line per change."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Final

from rich.console import Group
from rich.table import Table
from rich.text import Text

from controller.display import OUTCOME_WORDS, all_off_text
from controller.events import AllOff
from controller.words import phase_name, technique_name

if TYPE_CHECKING:
    from controller.fleet_model import FleetModel, Line

STOP_KEY: Final = "S"  # capital: a stop of every cushion must not come from a stray key
FOOTER: Final = "S (capital) stop every cushion now   q quit"
# Lines around the table: title, header, note, footer, the recent events and the line a live
# display keeps free below itself.
RECENT_SHOWN: Final = 3
CHROME_LINES: Final = 5 + RECENT_SHOWN
# How a session ended, short enough for the status column (the idle state is implied).
ENDED_WORDS: Final = {"done": "finished", "stopped": "stopped", "interrupted": "interrupted",
                      "device-error": "cushion failed", "safety": "safety stop"}
STATUS_STYLE: Final = {"running": "green", "link lost": "red", "node offline": "dim",
                       "cushion failed": "red", "safety stop": "red"}


def clock(seconds: float) -> str:
    """Return seconds as m:ss."""
    seconds = max(0, int(seconds))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


def status_words(node_status: str, state: dict[str, Any] | None) -> str:
    """Say in a word or two what a cushion is doing, or how its last session ended."""
    if node_status == "offline":
        return "node offline"
    if state is None:
        return "no cushions" if node_status != "unknown" else "unknown"
    if state.get("running"):
        if state.get("paused"):
            return "paused"
        return "running" if state.get("connected") else "link lost"
    outcome = state.get("last_outcome")
    if outcome in ENDED_WORDS:
        return ENDED_WORDS[outcome]
    if state.get("screening") == "due":
        return "screening due"
    return str(outcome) if outcome else "idle"


def doing_words(state: dict[str, Any] | None) -> str:
    """Say the phase and technique of a running session, with the heat, or the last fault."""
    if state is None:
        return ""
    if not state.get("running"):
        fault = state.get("last_fault")
        return str(fault) if fault and state.get("last_outcome") in ("device-error", "safety") \
            else ""
    parts = [phase_name(str(state["phase"]).lower())] if state.get("phase") else []
    if state.get("technique"):
        parts.append(technique_name(str(state["technique"])))
    text = " - ".join(parts)
    heat = state.get("heat")
    if heat is True or (isinstance(heat, int | float) and not isinstance(heat, bool) and heat > 0):
        text = f"heat, {text}" if text else "heat"  # first: a narrow column cuts the end
    return text


def level_words(state: dict[str, Any] | None) -> str:
    """Return the strongest zone's intensity now, in percent of the cushion's range."""
    if state is None or not state.get("running"):
        return ""
    levels = [v for v in state.get("intensity") or [] if isinstance(v, int | float)]
    return f"{max(levels, default=0.0):.0%}"


def event_words(event: dict[str, Any]) -> str:
    """Say one session event in plain words."""
    kind = event.get("kind")
    if kind == "session_started":
        return f"started {event.get('program', '')}"
    if kind == "stop_requested":
        how = "stopping now" if event.get("emergency") else "stopping gently"
        return f"{how}: {event.get('reason', '')}"
    if kind == "all_off":
        names = {f.name for f in dataclasses.fields(AllOff)}
        try:
            return all_off_text(AllOff(**{k: v for k, v in event.items() if k in names}))
        except TypeError:
            return "all outputs off"
    if kind == "session_ended":
        outcome = str(event.get("outcome", ""))
        return f"session {OUTCOME_WORDS.get(outcome, outcome)}"
    if kind == "paused":
        return f"paused: {event.get('reason', '')}"
    if kind == "resumed":
        return "resumed"
    if kind == "fault":
        return f"fault: {event.get('message', '')}"
    if kind == "link_down":
        return f"link lost: {event.get('reason', '')}"
    if kind == "link_up":
        return "link back"
    return str(kind)


def title(model: FleetModel, url: str) -> str:
    """Return the heading: the broker, and how many nodes and cushions it carries."""
    online = sum(1 for s in model.nodes.values() if s == "online")
    nodes = len(model.nodes)
    return (f"fleet on {url}: {nodes} node{'s' * (nodes != 1)} ({online} online), "
            f"{len(model.cushions)} cushion{'s' * (len(model.cushions) != 1)}, "
            f"{model.running()} running")


def table(model: FleetModel, max_rows: int | None = None) -> Table | Group:
    """Return the table of nodes and cushions (at most `max_rows` lines, then how many more)."""
    grid = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False,
                 header_style="bold")
    # (name, narrowest, widest): status, time and level keep their room; names give way.
    # 80 columns: 74 for the cells and one space between each two.
    for name, least, most in (("node", 5, 10), ("cushion", 6, 10), ("status", 14, 14),
                              ("program", 6, 13), ("doing", 6, 17), ("left", 5, 5),
                              ("level", 5, 5)):
        grid.add_column(name, min_width=least, max_width=most, no_wrap=True,
                        overflow="ellipsis",
                        justify="right" if name in ("left", "level") else "left")
    rows = model.rows()
    shown = rows if max_rows is None or len(rows) <= max_rows else rows[:max(0, max_rows - 1)]
    for node, cushion, state in shown:
        node_status = model.nodes.get(node, "unknown")
        status = status_words(node_status, state)
        style = STATUS_STYLE.get(status, "dim" if node_status == "offline" else "")
        running = state is not None and state.get("running") and node_status != "offline"
        remaining = state.get("remaining_s") if state is not None else None
        grid.add_row(
            node, cushion or "", Text(status, style),
            str(state.get("program") or "") if running and state is not None else "",
            doing_words(state) if node_status != "offline" else "",
            clock(remaining) if running and isinstance(remaining, int | float) else "",
            level_words(state) if running else "",
        )
    if len(shown) < len(rows):
        return Group(grid, _line(f"... and {len(rows) - len(shown)} more (--json lists all)",
                                 "dim"))
    return grid


def render(model: FleetModel, *, url: str, height: int, note: str, broker_lost: bool,
           keys: bool) -> Group:
    """Build the live view for a terminal `height` lines high."""
    parts: list[Text | Table | Group] = [_line(title(model, url), "bold")]
    if not model.nodes:
        parts.append(_line("no cushion nodes on this broker yet (cushion serve puts one there)",
                           "dim"))
    else:
        parts.append(table(model, max_rows=max(1, height - CHROME_LINES)))
    for at, node, cushion, event in list(model.recent)[-RECENT_SHOWN:]:
        stamp = time.strftime("%H:%M:%S", time.localtime(at))
        parts.append(_line(f"{stamp} {node}/{cushion}: {event_words(event)}", "dim"))
    if broker_lost:
        parts.append(_line("broker lost, reconnecting (what is shown may be out of date)",
                           "bold red"))
    elif note:
        parts.append(_line(note, "bold yellow"))
    parts.append(_line(FOOTER if keys else "Ctrl-C quit", "reverse"))
    return Group(*parts)


def _line(text: str, style: str) -> Text:
    """One screen line: cut with an ellipsis rather than wrapped (the view fits its height)."""
    return Text(text.replace("\n", " "), style, no_wrap=True, overflow="ellipsis")


def plain_line(line: Line, model: FleetModel) -> str | None:
    """Say one change line in words (a view that is not on a terminal); None: nothing to say."""
    kind = line.get("kind")
    if kind == "broker":
        status = line.get("status")
        if status == "lost":
            return f"broker lost, reconnecting: {line.get('error', '')}"
        return f"broker {status}: {line.get('url', '')}" if status != "synced" else None
    if kind == "node":
        return f"{line['node']}: {line['status'] or 'gone'}"
    if kind == "cushion":
        state = line.get("state")
        if state is None:
            return f"{line['node']}/{line['cushion']}: removed"
        node_status = model.nodes.get(str(line["node"]), "unknown")
        words = [status_words(node_status, state)]
        if state.get("running"):  # no time left: a log wants a line per change of doing
            words += [str(state.get("program") or ""), doing_words(state)]
        return f"{line['node']}/{line['cushion']}: " + ", ".join(w for w in words if w)
    if kind == "event":
        from controller.fleet_model import NOTABLE_EVENTS

        event = line.get("event") or {}
        if event.get("kind") in NOTABLE_EVENTS:
            return f"{line['node']}/{line['cushion']}: {event_words(event)}"
    return None

"""Show a plan: a table of phases and steps, what the envelope clamped, JSON, and a plot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Column, Table
from rich.text import Text

from controller.fallback import deadman_warning
from controller.words import phase_name, rule_name, technique_name, zone_names

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from controller.limits import SafetyLimits
    from controller.timeline import Timeline
    from firmware_profiles import Profile
    from protocols import Program


def _mmss(t: float) -> str:
    return f"{int(t) // 60:d}:{int(t) % 60:02d}"


def step_rows(timeline: Timeline) -> list[dict[str, Any]]:
    """Return one row per step: when, what, and each zone's peak after the envelope."""
    steps = [m for m in timeline.markers if m.kind == "step"]
    rows = []
    for k, m in enumerate(steps):
        end = steps[k + 1].t_s if k + 1 < len(steps) else timeline.duration_s
        i0, i1 = timeline.index_at(m.t_s), timeline.index_at(end - 1e-9) + 1
        peaks = [0.0] * len(timeline.zones)
        modes = set()
        for sp in timeline.setpoints[i0:i1]:
            peaks = [max(a, b) for a, b in zip(peaks, sp.levels, strict=True)]
            if sp.mode:
                modes.add(sp.mode)
        rows.append(
            {
                "t_s": m.t_s,
                "phase": m.phase,
                "technique": m.label,
                "repetitions": m.repetitions,
                "duration_s": m.duration_s,
                "peak": [round(p, 4) for p in peaks],
                "modes": sorted(modes),
            }
        )
    return rows


def plan_json(
    program: Program, profile: Profile, limits: SafetyLimits, timeline: Timeline
) -> dict[str, Any]:
    """Return the plan as a JSON-ready dict."""
    return {
        "program": program.name,
        "profile": profile.name,
        "duration_s": timeline.duration_s,
        "zones": list(timeline.zones),
        "limits": limits.model_dump(),
        "steps": step_rows(timeline),
        "clamps": [
            {
                "t_s": c.t_s,
                "zone": c.zone,
                "rule": c.rule,
                "wanted": round(c.wanted, 4),
                "got": round(c.got, 4),
            }
            for c in timeline.clamps
        ],
        "notes": timeline.notes,
        "warnings": program.notes(),
        "rule_warnings": [
            {"rule": w.rule, "where": w.where, "message": w.message}
            for w in program.rule_warnings()
        ],
        "peak": round(timeline.peak(), 4),
        "dead_man": deadman_warning(profile),
        "contraindications": contraindication_rows(program),
    }


def contraindication_rows(program: Program) -> list[dict[str, Any]]:
    """Return the program's contraindications: screening key (None for free text) and text."""
    return [{"key": c.key, "text": c.text} for c in program.contraindications]


CONTRA_HEAD = (
    "Not for use with (the article, line 287: \"always consider contraindications\"; for the "
    "conditions named, a doctor decides whether massage suits you; 'cushion run' asks these as "
    "the screening):"
)


def print_contraindications(console: Console, program: Program) -> None:
    """Print who should not use the program, one condition a line."""
    if not program.contraindications:
        console.print("[yellow]This program lists no contraindications.[/]")
        return
    console.print(escape(CONTRA_HEAD), soft_wrap=True)
    for c in program.contraindications:
        console.print(f"  - {escape(c.text)}", soft_wrap=True)


def _longest_word(text: str) -> int:
    return max(4, *(len(word) for word in text.split()))


def print_plan(
    console: Console, program: Program, profile: Profile, limits: SafetyLimits, timeline: Timeline
) -> None:
    """Print the plan for people."""
    console.print(
        f"[bold]{program.title}[/] ({program.name}) on {profile.info.title} "
        f"({profile.name}): {_mmss(timeline.duration_s)}"
    )
    areas = dict(zip((z.id for z in profile.zones), zone_names(profile), strict=True))
    table = Table(
        "at", Column("technique", no_wrap=True), "length",
        *(Column(areas.get(z, z), justify="right", min_width=_longest_word(areas.get(z, z)))
          for z in timeline.zones),
        box=None, padding=(0, 1, 0, 0), caption_justify="left",
        caption="each body area's peak after the safety limits",
    )
    phase = None
    for row in step_rows(timeline):
        if row["phase"] != phase:
            phase = row["phase"]
            table.add_row("", Text(phase_name(phase), style="bold"))
        reps = f" ×{row['repetitions']}" if row["repetitions"] > 1 else ""
        table.add_row(
            _mmss(row["t_s"]),
            technique_name(row["technique"]) + reps,
            _mmss(row["duration_s"]),
            *(f"{p:.0%}" for p in row["peak"]),
        )
    console.print(table)
    if timeline.clamps:
        console.print("[bold]Where the safety envelope lowered the program:[/]")
        seen: dict[tuple[str, str], int] = {}
        for c in timeline.clamps:
            seen[(c.zone, c.rule)] = seen.get((c.zone, c.rule), 0) + 1
            if seen[(c.zone, c.rule)] <= 3:
                # Wish and result are from one instant (the largest cut), so say which.
                console.print(
                    f"  {_mmss(c.t_s)}-{_mmss(c.until_s)} {areas.get(c.zone, c.zone)}: "
                    f"{rule_name(c.rule)}; at {_mmss(c.when_s)} {c.wanted:.0%} asked, "
                    f"{c.got:.0%} played"
                )
        hidden = sum(max(0, n - 3) for n in seen.values())
        if hidden:
            console.print(f"  (and {hidden} more of the same kinds)")
    for note in timeline.notes:
        console.print(f"[dim]note: {note}[/]")
    for warning_text in program.notes():
        console.print(f"[yellow]warning:[/] {escape(warning_text)}", soft_wrap=True)
    warning = deadman_warning(profile)
    if warning:
        console.print(f"[bold yellow]warning:[/] {warning}")
    print_contraindications(console, program)


def plot_plan(
    program: Program, profile: Profile, limits: SafetyLimits, timeline: Timeline, path: Path
) -> None:
    """Save a PNG of what the cushion will play (see controller.plot)."""
    from controller.plot import save_plot

    save_plot(program, profile, limits, timeline, path)

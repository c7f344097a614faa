"""What the cushion will really play, for people: a picture (matplotlib) and terminal sparklines.

Both show the cushion's own levels (the plan after the safety envelope, quantised down as
the device does it), one row per body area, so a level the cushion cannot play shows as off.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from controller.ceiling import quantize_matrix
from controller.safety import zone_caps
from controller.words import phase_name, rule_name, technique_name, zone_names

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from controller.limits import SafetyLimits
    from controller.timeline import Timeline
    from firmware_profiles import Profile
    from protocols import Program

# The upper envelope follows the strongest level within this window: long enough to ride over
# every pattern's rhythm (stroking waves take up to 8 s), short enough to show each step's ramp.
ENVELOPE_WINDOW_S = 8.0
# Points per row in the picture: ample for a 40-minute plan on a 12-inch-wide figure.
MAX_POINTS = 1500
BLOCKS = "▁▂▃▄▅▆▇█"
_PHASE_COLOURS = {"introductory": "#e8f3e8", "main": "#e8eef8", "final": "#f3eaf5"}


def _mmss(t: float) -> str:
    whole = round(t)
    return f"{whole // 60}:{whole % 60:02d}"


def cushion_title(profile: Profile) -> str:
    """Return the cushion's title without its technical parenthesis ("VB6 six-zone cushion")."""
    return re.sub(r"\s*\([^)]*\)\s*$", "", profile.info.title) or profile.name


def plot_title(program: Program, profile: Profile) -> str:
    """Return the picture's plain title."""
    return f"{program.title} on {cushion_title(profile)}: what the cushion will play"


def zone_limits(
    profile: Profile, limits: SafetyLimits, *, sparing: bool
) -> list[tuple[float, str]]:
    """Return, per zone, the lowest static cap (0..1) and the rule that sets it."""
    return [min(rules) for rules in zone_caps(profile, limits, sparing=sparing)]


def played_levels(
    timeline: Timeline, profile: Profile, limits: SafetyLimits, *, sparing: bool
) -> np.ndarray:
    """Return what the cushion plays (samples x zones, 0..1 of full scale): its own levels."""
    caps = [cap for cap, _ in zone_limits(profile, limits, sparing=sparing)]
    wanted = np.asarray(timeline.level_matrix(), dtype=float).reshape(-1, len(timeline.zones))
    # The same quantisation the device applies on the way to the wire (Device.quantize_levels).
    device = quantize_matrix(wanted, caps, profile.intensity)
    scale = profile.intensity
    return (device - scale.min) / (scale.max - scale.min)


def envelope(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the rolling (lowest, highest) of a series over `window` samples, centred."""
    if window <= 1 or len(values) == 0:
        return values.copy(), values.copy()
    half = window // 2
    padded = np.pad(values, (half, window - 1 - half), mode="edge")
    view = np.lib.stride_tricks.sliding_window_view(padded, window)
    return view.min(axis=1), view.max(axis=1)


def spark_row(
    times: Sequence[float], values: Sequence[float], duration_s: float, width: int
) -> str:
    """Return one sparkline: per cell the strongest value (0..1) held in its time, as a block."""
    cells = [0.0] * width
    for k, (t, v) in enumerate(zip(times, values, strict=True)):
        end = times[k + 1] if k + 1 < len(times) else duration_s
        first = int(t / duration_s * width)
        last = max(first, math.ceil(end / duration_s * width) - 1)
        for c in range(first, min(last, width - 1) + 1):
            cells[c] = max(cells[c], v)
    return "".join(
        " " if v <= 0 else BLOCKS[min(len(BLOCKS), math.ceil(v * len(BLOCKS) - 1e-9)) - 1]
        for v in cells
    )


def spark_lines(
    program: Program, profile: Profile, limits: SafetyLimits, timeline: Timeline,
    columns: int = 80,
) -> list[str]:
    """Return the plan as terminal sparklines (at most `columns` wide, the marks 20-120 wide):
    a title, the phases in words and as marks, one line per body area, the time scale."""
    names = zone_names(profile)
    pad = max(len(n) for n in names) + 2
    width = max(20, min(120, columns - pad))
    played = played_levels(timeline, profile, limits, sparing=program.sparing)
    duration = timeline.duration_s
    lines = [
        f"{plot_title(program, profile)} ({_mmss(duration)}, one mark = {duration / width:.0f} s)"
    ]
    header = [" "] * width
    phases = [m for m in timeline.markers if m.kind == "phase"]
    for k, m in enumerate(phases):
        start = min(width - 1, int(m.t_s / duration * width))
        end = int(phases[k + 1].t_s / duration * width) if k + 1 < len(phases) else width
        label = ("|" + phase_name(m.phase))[: max(1, end - start)]
        header[start : start + len(label)] = list(label)
    lines.append(" " * pad + "".join(header))
    lines.insert(1, "phases: " + ", ".join(
        f"{phase_name(m.phase)} {_mmss(m.t_s)}-{_mmss(m.t_s + m.duration_s)}" for m in phases
    ))
    for z, name in enumerate(names):
        lines.append(name.ljust(pad) + spark_row(timeline.times, played[:, z].tolist(),
                                                 duration, width))
    total = _mmss(duration)
    lines.append(" " * pad + "0:00".ljust(width - len(total)) + total)
    return lines


def _import_matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        from controller.errors import UsageError

        raise UsageError(
            "the picture needs matplotlib, which is not installed.",
            key="--plot",
            hint="Install the optional extra: pip install 'cushion[plot]' (or use --spark "
            "for the same in the terminal).",
        ) from exc
    return Figure


def plan_figure(
    program: Program, profile: Profile, limits: SafetyLimits, timeline: Timeline
) -> Any:
    """Return a matplotlib Figure of what the cushion plays, one row per body area."""
    figure_class = _import_matplotlib()
    names = zone_names(profile)
    played = played_levels(timeline, profile, limits, sparing=program.sparing)
    caps = zone_limits(profile, limits, sparing=program.sparing)
    n = len(timeline.times)
    stride = max(1, math.ceil(n / MAX_POINTS))
    times = np.asarray(timeline.times, dtype=float)
    resolution = float(times[1] - times[0]) if n > 1 else 1.0
    window = max(1, round(ENVELOPE_WINDOW_S / resolution))
    minutes = np.append(times, timeline.duration_s)[::stride] / 60
    heat = [sp.heat or 0.0 for sp in timeline.setpoints]
    rows = len(names) + (1 if profile.heat is not None and any(heat) else 0)
    fig = figure_class(figsize=(12, 1.05 * rows + 2.2), layout="constrained")
    grid = fig.add_gridspec(rows + 1, 1, height_ratios=[0.9] + [1.0] * rows)
    strip = fig.add_subplot(grid[0])
    axes = [fig.add_subplot(grid[r + 1], sharex=strip) for r in range(rows)]
    _phase_strip(strip, timeline)
    levels = profile.intensity.max - profile.intensity.min
    for z, (ax, name) in enumerate(zip(axes, names, strict=False)):
        _phase_bands(ax, timeline)
        series = np.append(played[:, z], 0.0)
        low, high = envelope(series, window)
        ax.fill_between(minutes, low[::stride] * 100, high[::stride] * 100, step="post",
                        color="#4a78b5", alpha=0.25, lw=0, label="the fast rhythm (range)")
        ax.step(minutes, high[::stride] * 100, where="post", color="#1f4e8c", lw=1.3,
                label=f"strongest within {ENVELOPE_WINDOW_S:g} s")
        cap, rule = caps[z]
        if cap < 1.0:
            ax.axhline(cap * 100, color="#b03030", lw=0.9, ls="--", label="limit")
            ax.text(timeline.duration_s / 60, cap * 100, f" limit {cap:.0%}: {rule_name(rule)}",
                    color="#b03030", fontsize=7, va="center", ha="left", clip_on=False)
        for c in timeline.clamps:
            if c.zone == timeline.zones[z] and c.rule != "ramp rule":
                ax.axvspan(c.t_s / 60, max(c.until_s, c.t_s + 2) / 60, ymin=0, ymax=0.04,
                           color="#b03030", alpha=0.7, lw=0, label="lowered by a limit")
        ax.set_ylim(0, 105)
        ax.set_yticks([0, 50, 100], ["off", "50%", "100%"], fontsize=7)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        ax.tick_params(labelbottom=False)
    if rows > len(names):
        ax = axes[-1]
        _phase_bands(ax, timeline)
        ax.step(minutes, np.append(heat, 0.0)[::stride] * 100, where="post", color="#c2571a",
                lw=1.3)
        ax.set_ylim(0, 105)
        ax.set_yticks([0, 100], ["off", "top"], fontsize=7)
        ax.set_ylabel("warming", rotation=0, ha="right", va="center", fontsize=9)
    axes[-1].tick_params(labelbottom=True)
    axes[-1].set_xlabel("minutes")
    strip.set_xlim(0, timeline.duration_s / 60)
    fig.suptitle(plot_title(program, profile), fontsize=13)
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles.keys()), loc="outside lower center",
               ncol=len(handles), fontsize=8, frameon=False)
    strip.set_title(
        f"intensity each body area feels, after the safety limits, in the cushion's {levels} "
        "steps (a level it cannot play shows as off)", fontsize=9,
    )
    return fig


def _phase_bands(ax: Any, timeline: Timeline) -> None:
    phases = [m for m in timeline.markers if m.kind == "phase"]
    for k, m in enumerate(phases):
        end = phases[k + 1].t_s if k + 1 < len(phases) else timeline.duration_s
        ax.axvspan(m.t_s / 60, end / 60, color=_PHASE_COLOURS.get(m.phase, "#f0f0f0"), lw=0)


def _phase_strip(ax: Any, timeline: Timeline) -> None:
    """Label the phases and, below them, the techniques (a run of one technique is one label)."""
    _phase_bands(ax, timeline)
    phases = [m for m in timeline.markers if m.kind == "phase"]
    for k, m in enumerate(phases):
        end = phases[k + 1].t_s if k + 1 < len(phases) else timeline.duration_s
        ax.text((m.t_s + end) / 120, 0.84, f"{phase_name(m.phase)} ({_mmss(end - m.t_s)})",
                ha="center", va="center", fontsize=9, fontweight="bold")
    runs: list[list[Any]] = []
    for m in (m for m in timeline.markers if m.kind == "step"):
        word = technique_name(m.technique or m.label)
        if runs and runs[-1][0] == word and runs[-1][4] == m.phase:
            runs[-1][2] = m.t_s + m.duration_s
            runs[-1][3] += m.repetitions
        else:
            runs.append([word, m.t_s, m.t_s + m.duration_s, m.repetitions, m.phase])
    for k, (word, start, end, reps, _) in enumerate(runs):
        label = word if reps == 1 else f"{word} ×{reps}"
        ax.axvline(start / 60, ymin=0, ymax=0.62, color="grey", lw=0.5)
        ax.text((start + end) / 120, (0.48, 0.3, 0.12)[k % 3], label, ha="center",
                va="center", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.tick_params(labelbottom=False, bottom=False)
    for side in ("left", "right", "bottom"):
        ax.spines[side].set_visible(False)


def save_plot(
    program: Program, profile: Profile, limits: SafetyLimits, timeline: Timeline, path: Path
) -> None:
    """Save the picture as a PNG at `path`."""
    fig = plan_figure(program, profile, limits, timeline)
    fig.savefig(path, dpi=110)

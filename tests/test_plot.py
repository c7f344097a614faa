"""The picture and the sparklines of a plan: what the cushion really plays, in words people read."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import TYPE_CHECKING

import matplotlib.image
import numpy as np
import pytest

from controller.limits import DEFAULT_LIMITS
from controller.plot import BLOCKS, plan_figure, played_levels, spark_lines, spark_row
from controller.runner import plan
from controller.words import zone_names
from firmware_profiles import load_profile
from protocols import load_program

if TYPE_CHECKING:
    from pathlib import Path

CLI = [sys.executable, "-m", "controller.cli"]


def cushion(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user does."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, check=False)


def _figure(program: str, profile: str):  # type: ignore[no-untyped-def]
    prog, prof = load_program(program), load_profile(profile)
    timeline = plan(prog, prof, DEFAULT_LIMITS)
    return prog, prof, timeline, plan_figure(prog, prof, DEFAULT_LIMITS, timeline)


def test_the_figure_has_one_row_per_body_area_and_speaks_words() -> None:
    _, prof, _, fig = _figure("lumbar-classic", "vb6-binary")
    strip, *rows = fig.axes
    assert [ax.get_ylabel() for ax in rows] == list(zone_names(prof))
    assert fig.get_suptitle() == (
        "Classic lumbar massage on VB6 six-zone cushion: what the cushion will play"
    )
    strip_texts = [t.get_text() for t in strip.texts]
    assert {"warm-up (3:00)", "main part (20:10)", "calming down (3:00)"} <= set(strip_texts)
    for label in ("kneading ×3", "rubbing ×3", "steady vibration ×2", "squeezing ×2"):
        assert label in strip_texts
    assert not any("-" in t and "vibration" in t for t in strip_texts)  # no raw technique ids
    kidney = [ax for ax in rows if ax.get_ylabel().startswith("lower back")]
    assert len(kidney) == 2
    for ax in kidney:
        assert "limit 30%: kept gentle over the kidneys" in [t.get_text().strip() for t in ax.texts]
        envelope = ax.lines[0].get_ydata()
        assert max(envelope) <= 30 + 1e-9 and max(envelope) > 25
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "lowered by a limit" in legend


def test_the_figure_draws_what_a_coarse_cushion_plays() -> None:
    prog, prof, timeline, fig = _figure("lumbar-classic", "lp4-ascii")
    played = played_levels(timeline, prof, DEFAULT_LIMITS, sparing=prog.sparing)
    # An independent reading of the device's rounding: the profile's own to_device per value.
    caps = {z.id: (0.3 if z.kidney else 0.8) for z in prof.zones}
    for z, zone in enumerate(timeline.zones):
        for i in range(0, len(timeline.times), 37):
            want = min(timeline.setpoints[i].levels[z], caps[zone])
            assert played[i, z] == prof.intensity.from_device(prof.intensity.to_device(want))
    seat = next(ax for ax in fig.axes[1:] if ax.get_ylabel() == "buttocks")
    x, y = seat.lines[0].get_xdata(), seat.lines[0].get_ydata()
    last_minute = (x > timeline.duration_s / 60 - 1) & (x < timeline.duration_s / 60 - 10 / 60)
    # The final stroking of the glutes is felt: the lowest of 10 levels until the last seconds.
    assert last_minute.any() and min(y[last_minute]) == pytest.approx(10)


def test_plot_png_from_the_command_line(tmp_path: Path) -> None:
    png = tmp_path / "plan.png"
    done = cushion("plan", "lumbar-classic", "--profile", "vb6-binary", "--plot", str(png))
    assert done.returncode == 0, done.stderr
    assert f"plot saved to {png}" in done.stderr
    image = matplotlib.image.imread(png)
    height, width = image.shape[:2]
    assert width == 12 * 110 and height > 6 * 110  # six rows and the strip at 110 dpi
    rgb = image[..., :3]
    ink = (rgb < 0.9).any(axis=2).mean()
    assert 0.05 < ink < 0.6  # drawn on, not a blank or a solid page
    assert len(np.unique((rgb * 255).astype(int).reshape(-1, 3), axis=0)) > 50


def test_a_missing_matplotlib_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.figure'] = None\n"
        "from controller.cli import main\n"
        f"main(['plan', 'lumbar-classic', '--plot', {str(tmp_path / 'x.png')!r}])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "pip install 'cushion[plot]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.png").exists()


def _model_row(times: list[float], values: list[float], duration: float, width: int) -> str:
    """A second, plainer sparkline: sample each cell finely and keep the strongest value."""
    out = []
    for c in range(width):
        lo, hi = c * duration / width, (c + 1) * duration / width
        best = 0.0
        for k in range(1000):
            t = lo + (hi - lo) * (k + 0.5) / 1000
            held = [v for tt, v in zip(times, values, strict=True) if tt <= t]
            best = max(best, held[-1] if held else 0.0)
        out.append(" " if best == 0 else BLOCKS[max(1, math.ceil(best * 8 - 1e-9)) - 1])
    return "".join(out)


@pytest.mark.parametrize("width", [2, 3, 8, 13])
def test_sparkline_cells_match_an_independent_model(width: int) -> None:
    times, values = [0.0, 1.0, 2.0, 3.0, 3.5], [0.0, 0.5, 1.0, 0.05, 0.3]
    assert spark_row(times, values, 4.0, width) == _model_row(times, values, 4.0, width)
    assert spark_row(times, values, 4.0, 8) == "  ▄▄██▁▃"


def test_sparklines_from_the_command_line() -> None:
    done = cushion("plan", "lumbar-classic", "--profile", "lp4-ascii", "--spark")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    names = zone_names(load_profile("lp4-ascii"))
    rows = {n: line[len(n):].strip("\n") for line in lines for n in names if line.startswith(n)}
    assert set(rows) == set(names)
    title = next(i for i, line in enumerate(lines) if "what the cushion will play" in line)
    assert lines[title + 1] == (
        "phases: warm-up 0:00-3:00, main part 3:00-23:10, calming down 23:10-26:10"
    )
    assert lines[title + 2].count("|") == 3 and "|main part" in lines[title + 2]
    assert rows["buttocks"].rstrip()[-1] in BLOCKS  # the final stroking is felt to the end
    assert set(rows["lower back, left"].strip()) - {" "} == set(BLOCKS[:3])  # 30 % cap


def test_sparkline_lines_are_one_per_body_area_and_fit() -> None:
    prog, prof = load_program("radiculitis-gentle"), load_profile("vb6-binary")
    timeline = plan(prog, prof, DEFAULT_LIMITS)
    lines = spark_lines(prog, prof, DEFAULT_LIMITS, timeline, 70)
    assert len(lines) == 3 + len(prof.zones) + 1
    assert all(len(line) <= 70 for line in lines[2:])  # the marks fit; words may wrap
    # No heater: the warm-up plays as gentle stroking, so the first minutes are not blank.
    back = next(line for line in lines if line.startswith("lower back, left"))
    assert back[len("lower back, left"):].lstrip()[0] in BLOCKS[:2]

"""Shared pieces of the benchmark scripts: statistics, a busy core, the machine, a table."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import multiprocessing
import os
import platform
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

# The scripts run as `python bench/<name>.py`: make the project importable from there.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> str:
    """Return one line naming the machine: cores, CPU model, Python, date (UTC)."""
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"nproc {os.cpu_count()}, {model}, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.2f}, {today}"
    )


def steal_s() -> float:
    """Return the CPU time (s, all CPUs) the hypervisor has taken from this VM since boot."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    return float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (q: 0..100) of `values`, nearest-rank (a value that occurred)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n q / 100), at least the first
    return ordered[int(rank) - 1]


def summary_ms(values: Sequence[float]) -> tuple[float, float, float]:
    """Return median, p99 and max of `values` (seconds) in milliseconds."""
    if not values:
        return (float("nan"),) * 3
    return (
        statistics.median(values) * 1e3,
        percentile(values, 99) * 1e3,
        max(values) * 1e3,
    )


def _spin() -> None:
    # A pure-Python busy loop: one process keeps one core at 100 %.
    while True:
        pass


@contextlib.contextmanager
def busy_cores(count: int) -> Iterator[list[int]]:
    """Keep `count` other processes spinning (one core each) until the block ends; yield pids."""
    procs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(count)]
    for proc in procs:
        proc.start()
    try:
        yield [proc.pid for proc in procs if proc.pid is not None]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(5)


def other_cores() -> int:
    """Return how many cores there are besides the one this process runs on."""
    return max(1, (os.cpu_count() or 2) - 1)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Return a plain text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


if TYPE_CHECKING:
    from controller.device import Device
    from controller.timeline import Timeline


async def play_naive(device: Device, timeline: Timeline) -> None:
    """The naive baseline: play every sample after an accumulated `asyncio.sleep`, then stop."""
    device.origin = asyncio.get_running_loop().time()
    device.resume()
    serving = asyncio.create_task(device.serve())
    try:
        previous = 0.0
        for t, setpoint in zip(timeline.times, timeline.setpoints, strict=True):
            await asyncio.sleep(t - previous)
            previous = t
            device.set(setpoint)
        await asyncio.sleep(timeline.duration_s - previous)
        await device.halt("program finished", final=True)
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving

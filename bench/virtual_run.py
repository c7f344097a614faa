"""A whole program through the whole stack on the virtual clock, beside a naive scheduler.

Run: .venv/bin/python bench/virtual_run.py [--runs N] [--quick] [--program NAME]
     .venv/bin/python bench/virtual_run.py --digest    # what went on the wire, as hashes

For every built-in profile the program (lumbar-classic, 26.2 min; a profile whose auto-off
refuses it gets lumbar-short) is planned, passed through the envelope and played by the
real `Session` on a `Device` over `SimTransport` into a `SimulatedCushion` with its
recorder, all on `hil.vtime.VirtualTimeLoop`. Figures are wall seconds, median of --runs
after one warm-up run, plan included. Beside it, in the same process:

  naive   the same timeline played by a loop that wakes at every plan sample
          (`await asyncio.sleep(dt)`, then `device.set()`), no skipping of samples whose
          wire output is unchanged; same device, codec, simulator and recorder;
  plan    compile + envelope alone (part of both figures above).

speed-up = program length / wall. Target: >= 2000x (26 min in < 0.8 s).

--digest runs every built-in program the plan accepts on every built-in profile once and
prints, per run, hashes of the bytes the cushion received (with their virtual times), of
every recorder event and of every controller event, and the loop turns: a speed change must
leave the three hashes as they were (the turns may change).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import pstats
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import benchlib

from controller.device import Device
from controller.errors import PlanError
from controller.events import Event, SetpointSent
from controller.limits import DEFAULT_LIMITS
from controller.runner import RunOptions, plan, run_program
from controller.transports.base import Endpoint
from controller.transports.sim import SimTransport
from firmware_profiles import Profile, builtin_profiles, load_profile
from hil.cushion import SimulatedCushion
from hil.vtime import run_virtual
from protocols import Program, builtin_programs, load_program

TARGET_SPEEDUP = 2000.0
FALLBACK_PROGRAM = "lumbar-short"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one run put on the wire and what the simulator saw."""

    wall_s: float
    sent: int  # setpoints the device facade put on the wire (SetpointSent events)
    frames: int  # frames the simulator decoded (command events)
    refused: int  # commands the simulated firmware refused (must be 0)
    all_off: bool  # every zone off at the end


def run_session(program: Program, profile: Profile) -> Outcome:
    """Run the program with the real runner (plan, envelope, session) on the virtual clock."""
    events: list[Event] = []
    cushion = SimulatedCushion(profile)

    async def main() -> None:
        transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
        options = RunOptions(Endpoint("sim", profile.name), handle_signals=False)
        await run_program(
            program, profile, DEFAULT_LIMITS, options, emit=events.append, transport=transport
        )

    return _timed(main, events, cushion)


def run_naive(program: Program, profile: Profile) -> Outcome:
    """Plan the same way, then wake at every sample with accumulated sleeps and `set()`."""
    events: list[Event] = []
    cushion = SimulatedCushion(profile)

    async def main() -> None:
        timeline = plan(program, profile, DEFAULT_LIMITS)
        transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
        async with Device(
            transport, profile, DEFAULT_LIMITS, emit=events.append, sparing=program.sparing
        ) as device:
            await benchlib.play_naive(device, timeline)

    return _timed(main, events, cushion)


def _timed(main: Callable[[], object], events: list[Event], cushion: SimulatedCushion) -> Outcome:
    # The last run's garbage is collected here, not charged to this run's figure.
    gc.collect()
    start = time.perf_counter()
    run_virtual(main())  # type: ignore[arg-type]
    wall = time.perf_counter() - start
    recorder = cushion.recorder
    levels = recorder.last_levels()
    return Outcome(
        wall,
        sum(1 for e in events if isinstance(e, SetpointSent)),
        recorder.count("command"),
        recorder.count("refused"),
        all(level == recorder.off_level for level in levels),
    )


class _TappedCushion(SimulatedCushion):
    """A simulated cushion that hashes every chunk of bytes it is fed, with its virtual time."""

    def __init__(self, profile: Profile) -> None:
        super().__init__(profile)
        self.wire = hashlib.sha256()

    def feed(self, data: bytes) -> None:
        """Hash the bytes and their arrival time, then take them as the cushion does."""
        self.wire.update(f"{self.firmware.now()!r}:".encode() + bytes(data) + b"\n")
        super().feed(data)


def digest(program: Program, profile: Profile) -> str:
    """Return one line: wire, recorder and controller-event hashes of a session run, and turns."""
    events: list[Event] = []
    cushion = _TappedCushion(profile)
    turns = 0
    # Counting turns means wrapping the loop's private step; only this bench mode does it.
    base = asyncio.base_events.BaseEventLoop
    run_once = base._run_once  # type: ignore[attr-defined]

    def counted(self: asyncio.AbstractEventLoop) -> None:
        nonlocal turns
        turns += 1
        run_once(self)

    async def main() -> None:
        transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
        options = RunOptions(Endpoint("sim", profile.name), handle_signals=False)
        await run_program(
            program, profile, DEFAULT_LIMITS, options, emit=events.append, transport=transport
        )

    base._run_once = counted  # type: ignore[attr-defined]
    try:
        run_virtual(main())
    finally:
        base._run_once = run_once  # type: ignore[attr-defined]
    recorded = hashlib.sha256("\n".join(map(repr, cushion.recorder)).encode())
    emitted = hashlib.sha256("\n".join(map(repr, events)).encode())
    return (
        f"{profile.name:15} {program.name:23} wire {cushion.wire.hexdigest()[:16]}  "
        f"recorder {recorded.hexdigest()[:16]} ({len(cushion.recorder)} events)  "
        f"controller {emitted.hexdigest()[:16]} ({len(events)})  turns {turns}"
    )


def digests() -> list[str]:
    """Return `digest` lines for every built-in program the plan accepts on every profile."""
    lines = []
    for name in sorted(builtin_profiles()):
        profile = load_profile(name)
        for program_name in sorted(builtin_programs()):
            program = load_program(program_name)
            try:
                plan(program, profile, DEFAULT_LIMITS)
            except PlanError:
                continue
            lines.append(digest(program, profile))
    return lines


def plan_seconds(program: Program, profile: Profile, runs: int) -> float:
    """Return the median wall time of compile + envelope (s)."""
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        plan(program, profile, DEFAULT_LIMITS)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def pick_program(name: str, profile: Profile) -> Program:
    """Return `name`, or the fallback program when the profile refuses it (e.g. auto-off)."""
    program = load_program(name)
    try:
        plan(program, profile, DEFAULT_LIMITS)
    except PlanError:
        program = load_program(FALLBACK_PROGRAM)
    return program


def measure(
    run: Callable[[Program, Profile], Outcome], program: Program, profile: Profile, runs: int
) -> tuple[float, Outcome]:
    """Return the median wall time of `runs` runs after one warm-up, and the last outcome."""
    run(program, profile)
    outcomes = [run(program, profile) for _ in range(runs)]
    return statistics.median(o.wall_s for o in outcomes), outcomes[-1]


def cprofile(program: Program, profile: Profile, top: int = 15) -> str:
    """Return where one session run spends its time: own time per package, then top functions."""
    run_session(program, profile)
    profiler = cProfile.Profile()
    profiler.enable()
    run_session(program, profile)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    by_package: dict[str, float] = {}
    rows = []
    for (filename, line, func), (_cc, calls, tottime, cumtime, _callers) in raw.items():
        package = _package(filename)
        by_package[package] = by_package.get(package, 0.0) + tottime
        rows.append((tottime, calls, cumtime, f"{_short(filename)}:{line}({func})"))
    total = sum(by_package.values())
    out = [f"cProfile of one session run, {profile.name}: {total:.2f} s under the profiler"]
    for package, spent in sorted(by_package.items(), key=lambda kv: -kv[1]):
        out.append(f"  {package:20} {spent:6.2f} s {spent / total:6.1%} (own time)")
    out.append(f"  top {top} functions by own time:")
    out.append(f"  {'own s':>7} {'calls':>8} {'cum s':>7}  function")
    for tottime, calls, cumtime, where in sorted(rows, reverse=True)[:top]:
        out.append(f"  {tottime:7.3f} {calls:8} {cumtime:7.3f}  {where}")
    return "\n".join(out)


def _package(filename: str) -> str:
    path = filename.replace("\\", "/")
    for name in ("controller", "hil", "firmware_profiles", "protocols", "bench"):
        if f"/{name}/" in path and str(benchlib.ROOT) in path:
            return name
    if "/asyncio/" in path:
        return "asyncio (stdlib)"
    if path.startswith("~") or path.startswith("<"):
        return "builtins"
    return "other libraries"


def _short(filename: str) -> str:
    root = str(benchlib.ROOT) + "/"
    if filename.startswith(root):
        return filename[len(root) :]
    return (
        filename.rsplit("/", 2)[-2] + "/" + filename.rsplit("/", 1)[-1]
        if "/" in filename
        else filename
    )


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="one timed run per figure")
    parser.add_argument("--program", default="lumbar-classic")
    parser.add_argument("--profile", action="append", help="only these profiles")
    parser.add_argument(
        "--cprofile", metavar="PROFILE", help="only show where one session run on PROFILE spends"
    )
    parser.add_argument(
        "--digest", action="store_true", help="print wire/recorder/event hashes and loop turns"
    )
    args = parser.parse_args()
    if args.digest:
        print("\n".join(digests()))
        return
    if args.cprofile:
        profile = load_profile(args.cprofile)
        print(cprofile(pick_program(args.program, profile), profile))
        return
    runs = 1 if args.quick else args.runs
    print(benchlib.machine())
    print(f"median of {runs} run(s) after one warm-up; virtual clock; wall s include the plan\n")
    rows: list[list[object]] = []
    verdicts = []
    for name in args.profile or sorted(builtin_profiles()):
        profile = load_profile(name)
        program = pick_program(args.program, profile)
        length = plan(program, profile, DEFAULT_LIMITS).duration_s
        planned = plan_seconds(program, profile, runs)
        for label, run in (("session", run_session), ("naive", run_naive)):
            wall, out = measure(run, program, profile, runs)
            rows.append(
                [
                    name,
                    program.name,
                    label,
                    length / 60,
                    wall,
                    f"{length / wall:,.0f}x",
                    out.sent,
                    out.frames,
                    out.refused,
                    "yes" if out.all_off else "NO",
                ]
            )
            if label == "session":
                session_wall = wall
            else:
                verdicts.append(
                    f"{name:15} {program.name}: session {length / session_wall:,.0f}x "
                    f"(naive {length / wall:,.0f}x, {wall / session_wall:.1f}x slower); "
                    f"plan alone {planned:.3f} s; target >= {TARGET_SPEEDUP:,.0f}x "
                    f"{'met' if length / session_wall >= TARGET_SPEEDUP else 'MISSED'}"
                )
        rows.append([name, program.name, "plan only", length / 60, planned, "", "", "", "", ""])
    headers = [
        "profile",
        "program",
        "scheduler",
        "min",
        "wall s",
        "speed-up",
        "sent",
        "frames",
        "refused",
        "off at end",
    ]
    print(benchlib.table(headers, rows))
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()

"""Soak: sessions back to back on the virtual clock, each under a random fault schedule.

Run: .venv/bin/python bench/soak.py [--sessions 200] [--seed 1] [--no-tracemalloc]

Each session draws a built-in profile, a built-in program (programs longer than the cushion's
auto-off are left out for it, as `cushion plan` refuses them), ``auto_resume`` and one to
three faults of any kind in `hil.faults.FAULT_KINDS` at random moments of the program, and
drives the real controller (`Device` + `Session`, reconnecting, over the in-process
simulated transport) on a fresh `VirtualTimeLoop`; a session the faults paused is resumed
after 30 s as a user would. Then the cushion's own time-outs run out.

Reported:

- **breaches**: the cushion's recorder checked against the independent oracle
  (`tests.oracle`: caps, the ramp rule from zero after every restart, the intro cap, all off
  at the end where the cushion has a watchdog or lease). A known limitation is counted apart
  as "known: reset while changing": a device reset while the outputs change can be missed
  (xfail in tests/test_oracle.py), so a session with a reset fault whose only violations are
  ramps "after reboot" lands there; anything else is a breach.
- outcomes and exit codes by fault kind (a session counts once for each kind it had);
- **leaked tasks**: asyncio tasks still alive after the device closed, per session;
- **memory**, after each session and ``gc.collect()``: the live Python heap (tracemalloc,
  after emptying CPython's type attribute cache and leaving out the soak's own per-session
  records, see `live_heap`), its growth per session over the second half of the run and a
  verdict, "flat" under `FLAT_B_PER_SESSION`; also the raw tracemalloc size, the session's
  peak, the count of gc-tracked objects and VmRSS (/proc/self/status), the first 50 sessions
  against the last 50;
- **file descriptors**: /proc/self/fd before the first session and after each;
- wall time, and the virtual time simulated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import statistics
import sys
import time
import tracemalloc
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from controller.limits import DEFAULT_LIMITS  # noqa: E402
from firmware_profiles import load_profile  # noqa: E402
from hil.cushion import SimulatedCushion  # noqa: E402
from hil.faults import FAULT_KINDS, FaultSchedule  # noqa: E402
from hil.vtime import run_virtual  # noqa: E402
from protocols import Program, load_program  # noqa: E402
from tests.oracle import Check, Rules, violations  # noqa: E402
from tests.support import play_under_faults  # noqa: E402

PROFILES = ("lp4-ascii", "nus-text", "vb6-binary", "remote-stepper")
PROGRAMS = ("lumbar-classic", "lumbar-short", "lumbar-osteochondrosis", "radiculitis-gentle")
KNOWN_RESET = "known: reset while changing"
# "Flat" heap: what survives a session grows by less than this a session (bytes) over the
# second half of the run. A session left behind whole (device, cushion, recorder) keeps 0.3-4 MB;
# once the caches are warm nothing survives (0 B a session here, bar a 1 kB set resize at times).
FLAT_B_PER_SESSION = 100.0
RESUME_AFTER_S = 30.0  # a session paused by a fault: the user presses Enter after this long


@dataclass(slots=True)  # no per-record __dict__: the records are the one thing the soak keeps
class SessionReport:
    """One soak session: what ran, what went wrong, what it left behind."""

    n: int
    profile: str
    program: str
    faults: tuple[str, ...]
    outcome: str
    exit_code: int | None
    verdict: str  # "ok", KNOWN_RESET or "breach"
    violations: tuple[str, ...]
    leaked_tasks: int
    virtual_s: float
    wall_s: float
    traced_b: int = 0  # tracemalloc current after the session and gc.collect()
    live_b: int = 0  # the same less the type cache and the soak's records (`live_heap`)
    peak_b: int = 0  # tracemalloc peak during the session
    gc_objects: int = 0
    rss_kb: int = 0
    fds: int = 0


@dataclass
class SoakReport:
    """Every session, and the process before the first one."""

    seed: int
    sessions: list[SessionReport] = field(default_factory=list)
    fds_before: int = 0
    rss_before_kb: int = 0
    wall_s: float = 0.0
    tracemalloc_kb: int = 0  # tracemalloc's own tables at the end (they are in the RSS)

    @property
    def breaches(self) -> list[SessionReport]:
        return [s for s in self.sessions if s.verdict == "breach"]

    @property
    def known(self) -> list[SessionReport]:
        return [s for s in self.sessions if s.verdict == KNOWN_RESET]

    @property
    def leaked(self) -> int:
        return sum(s.leaked_tasks for s in self.sessions)

    def growth_per_session(self, attr: str) -> float:
        """Return how much ``attr`` grew a session over the second half of the run."""
        half = self.sessions[len(self.sessions) // 2 :]
        if len(half) < 2:
            return 0.0
        first, last = float(getattr(half[0], attr)), float(getattr(half[-1], attr))
        return (last - first) / (len(half) - 1)

    @property
    def heap_flat(self) -> bool | None:
        """Whether the live heap is flat (None when tracemalloc was off)."""
        if not any(s.live_b for s in self.sessions):
            return None
        return self.growth_per_session("live_b") < FLAT_B_PER_SESSION


def fd_count() -> int:
    """Return how many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def rss_kb() -> int:
    """Return this process's resident set size (VmRSS, kB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def live_heap() -> int:
    """Return the bytes tracemalloc traces, less two things that are not the code under soak.

    CPython's type attribute cache (4096 slots) keeps a strong reference to the name of each
    lookup it caches; a name built at run time is a new string each time (reprlib's
    ``"repr_" + typename``, run each session when ``asyncio.Runner`` compares its SIGINT
    handler: the ValueError in ``signal.getsignal`` formats the handler, whose repr holds the
    main task and its result). New slots fill slowly, so the raw heap crept by ~0.3-0.5 kB a
    session; `sys._clear_type_cache` empties it. And the soak's own records, allocated here.
    """
    sys._clear_type_cache()
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, __file__)])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _intro_end(program: Program) -> float:
    """Loop time after the session start when the introductory window ends (docs/safety.md)."""
    lead = 0.0
    for phase in program.phases:
        if phase.kind != "introductory":
            break
        lead += phase.duration_s
    return max(lead, float(DEFAULT_LIMITS.intro_min_s))


def draw_schedule(rng: random.Random, duration_s: float) -> FaultSchedule:
    """One to three faults of any kind at random moments of a program ``duration_s`` long."""
    entries: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(FAULT_KINDS)
        entry: dict[str, Any] = {"kind": kind, "at_s": round(rng.uniform(0.0, duration_s), 3)}
        if kind == "hang_up":
            entry["duration_s"] = rng.choice([0.0, 0.5, 5.0])
        elif kind == "reset":
            entry["duration_s"] = rng.choice([0.0, 0.2])
        else:
            entry["duration_s"] = round(rng.uniform(0.05, 20.0), 3)
        if kind == "late_replies":
            entry["params"] = {"delay_s": round(rng.uniform(0.01, 1.0), 3)}
        entries.append(entry)
    return FaultSchedule.of(*entries)


def draw_session(
    rng: random.Random, programs: tuple[str, ...] = PROGRAMS
) -> tuple[str, str, bool, FaultSchedule]:
    """Pick a profile, a program that fits it, auto-resume and a fault schedule."""
    profile = rng.choice(PROFILES)
    auto_off = load_profile(profile).limits.auto_off_s
    fits = [p for p in programs if not auto_off or load_program(p).duration_s <= auto_off]
    program = rng.choice(fits)
    return (
        profile,
        program,
        rng.random() < 0.5,
        draw_schedule(rng, load_program(program).duration_s),
    )


async def _drive(
    profile_name: str, program_name: str, auto_resume: bool, schedule: FaultSchedule
) -> tuple[SimulatedCushion, str, int | None, int, float]:
    """Run one session; return the cushion, outcome, exit code, leaked tasks, start time."""
    profile, program = load_profile(profile_name), load_program(program_name)
    limits = DEFAULT_LIMITS
    cushion = SimulatedCushion(profile)
    loop = asyncio.get_running_loop()
    start = loop.time()
    outcome, code = "raised", None
    try:
        result = await play_under_faults(
            profile,
            program,
            limits,
            cushion,
            schedule,
            auto_resume=auto_resume,
            resume_after_s=RESUME_AFTER_S,
        )
        outcome, code = result.outcome, result.exit_code
    except Exception as exc:  # a device error that escaped the session: reported, not hidden
        outcome = f"raised {type(exc).__name__}"
    # The cushion's own time-outs end whatever a fault left on (a stepper has none).
    lim = profile.limits
    await asyncio.sleep(max(lim.watchdog_s or 0.0, lim.lease_s or 0.0) + 1.0)
    leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in leaked:
        task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.gather(*leaked, return_exceptions=True)
    return cushion, outcome, code, len(leaked), start


def run_session(n: int, rng: random.Random, programs: tuple[str, ...] = PROGRAMS) -> SessionReport:
    """Draw and run one session; judge its trace with the oracle."""
    profile, program, auto_resume, schedule = draw_session(rng, programs)
    t0 = time.perf_counter()
    end_s = 0.0

    async def main() -> tuple[SimulatedCushion, str, int | None, int, float]:
        nonlocal end_s
        out = await _drive(profile, program, auto_resume, schedule)
        end_s = asyncio.get_running_loop().time()
        return out

    cushion, outcome, code, leaked, start = run_virtual(main())
    wall = time.perf_counter() - t0
    prog = load_program(program)
    rules = Rules.of(profile, DEFAULT_LIMITS, sparing=prog.sparing)
    first = cushion.recorder.events[0].t if cushion.recorder.events else start
    check = Check(intro_until_s=first + _intro_end(prog), off_at_end=rules.control != "stepping")
    # Copied, so the record's texts are allocated here and `live_heap` leaves them out.
    found = tuple(v.encode().decode() for v in violations(rules, cushion.recorder, check))
    kinds = tuple(e.kind for e in schedule.entries)
    verdict = "ok"
    if found:
        known = "reset" in kinds and all("after reboot" in v for v in found)
        verdict = KNOWN_RESET if known else "breach"
    return SessionReport(
        n, profile, program, kinds, outcome, code, verdict, found, leaked, end_s - start, wall
    )


def soak(
    sessions: int,
    seed: int,
    *,
    trace_memory: bool = True,
    programs: tuple[str, ...] = PROGRAMS,
) -> SoakReport:
    """Run ``sessions`` sessions back to back in this process; measure after each.

    ``programs``: the built-in programs to draw from (the smoke test keeps to the shortest).
    """
    rng = random.Random(seed)
    report = SoakReport(seed)
    gc.collect()
    report.fds_before, report.rss_before_kb = fd_count(), rss_kb()
    if trace_memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    try:
        for n in range(sessions):
            if trace_memory:
                tracemalloc.reset_peak()
            one = run_session(n, rng, programs)
            gc.collect()
            if trace_memory:
                one.traced_b, one.peak_b = tracemalloc.get_traced_memory()
                one.live_b = live_heap()
            one.gc_objects = len(gc.get_objects())
            one.rss_kb, one.fds = rss_kb(), fd_count()
            report.sessions.append(one)
    finally:
        if trace_memory:
            report.tracemalloc_kb = tracemalloc.get_tracemalloc_memory() // 1024
            tracemalloc.stop()
    report.wall_s = time.perf_counter() - t0
    return report


def _outcome(s: SessionReport) -> str:
    return f"{s.outcome} ({s.exit_code})" if s.exit_code is not None else s.outcome


def describe(report: SoakReport) -> str:
    """Return the report as text (the tables docs/benchmarks.md shows)."""
    from bench import benchlib

    ss = report.sessions
    lines = [benchlib.machine(), f"seed {report.seed}, {len(ss)} sessions"]
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for s in ss:
        for kind in sorted(set(s.faults)):
            by_kind[kind][_outcome(s)] += 1
    rows = []
    for kind in FAULT_KINDS:
        c = by_kind.get(kind, Counter())
        known = sum(1 for s in report.known if kind in s.faults)
        breach = sum(1 for s in report.breaches if kind in s.faults)
        text = ", ".join(f"{k} {v}" for k, v in c.most_common()) or "-"
        rows.append((kind, sum(c.values()), breach, known, text))
    lines.append("")
    lines.append(
        benchlib.table(("fault kind", "sessions", "breaches", "known", "outcomes (exit)"), rows)
    )
    totals = Counter(_outcome(s) for s in ss)
    lines.append("")
    lines.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in totals.most_common()))
    lines.append(
        f"breaches {len(report.breaches)}; {KNOWN_RESET} {len(report.known)} "
        f"(of {sum('reset' in s.faults for s in ss)} sessions with a reset)"
    )
    for s in report.breaches[:10]:
        lines.append(f"  breach #{s.n} {s.profile} {s.program} {s.faults}: {s.violations[:2]}")
    lines.append(
        f"leaked tasks {report.leaked} (sessions with any: {sum(1 for s in ss if s.leaked_tasks)})"
    )
    k = min(50, max(1, len(ss) // 4))
    head, tail = ss[:k], ss[-k:]
    lines.extend(_memory_lines(report, k))
    lines.append(
        f"RSS: before {report.rss_before_kb / 1024:.1f} MB; first {k} mean "
        f"{_mb(head, 'rss_kb', 1024)} MB, last {k} mean {_mb(tail, 'rss_kb', 1024)} MB "
        f"(max {max(s.rss_kb for s in ss) / 1024:.1f}); second half "
        f"{report.growth_per_session('rss_kb'):+.1f} kB/session"
        + (
            f"; tracemalloc's own tables {report.tracemalloc_kb / 1024:.1f} MB of it"
            if report.tracemalloc_kb
            else ""
        )
    )
    lines.append(
        f"open fds: before {report.fds_before}, after the first {ss[0].fds}, after the last "
        f"{ss[-1].fds} (max {max(s.fds for s in ss)})"
    )
    virtual = sum(s.virtual_s for s in ss)
    walls = [s.wall_s for s in ss]
    lines.append(
        f"wall {report.wall_s:.1f} s for {virtual / 3600:.1f} h of virtual time "
        f"({virtual / max(report.wall_s, 1e-9):,.0f}x); per session median "
        f"{statistics.median(walls):.2f} s, max {max(walls):.2f} s"
    )
    return "\n".join(lines)


def _memory_lines(report: SoakReport, k: int) -> list[str]:
    """The heap lines of the report: live heap and its verdict, raw tracemalloc, gc objects."""
    ss = report.sessions
    head, tail = ss[:k], ss[-k:]
    lines = [
        f"gc-tracked objects: after the first session {ss[0].gc_objects}, after the last "
        f"{ss[-1].gc_objects}; second half {report.growth_per_session('gc_objects'):+.2f}/session"
    ]
    flat = report.heap_flat
    if flat is None:
        return lines
    growth = report.growth_per_session("live_b")
    verdict = "flat" if flat else "GROWING"
    mid = ss[len(ss) // 2]
    lines += [
        f"live heap (tracemalloc less the type cache and the soak's records): after the first "
        f"session {ss[0].live_b / 1e3:.1f} kB, at session {mid.n + 1} {mid.live_b / 1e3:.1f} "
        f"kB, after the last {ss[-1].live_b / 1e3:.1f} kB; second half {growth:+.1f} B/session: "
        f"{verdict} (bound {FLAT_B_PER_SESSION:.0f} B/session)",
        f"tracemalloc raw: first {k} mean {_mb(head, 'traced_b', 1e6)} MB, last {k} mean "
        f"{_mb(tail, 'traced_b', 1e6)} MB; peak during a session median "
        f"{statistics.median(s.peak_b for s in ss) / 1e6:.1f} MB, max "
        f"{max(s.peak_b for s in ss) / 1e6:.1f} MB",
    ]
    return lines


def _mb(group: list[SessionReport], attr: str, unit: float) -> str:
    return f"{statistics.mean(getattr(s, attr) for s in group) / unit:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-tracemalloc", action="store_true", help="RSS only (faster)")
    args = parser.parse_args(argv)
    report = soak(args.sessions, args.seed, trace_memory=not args.no_tracemalloc)
    print(describe(report))
    return 1 if report.breaches or report.leaked or report.heap_flat is False else 0


if __name__ == "__main__":
    sys.exit(main())

"""A bounded soak (bench/soak.py, the same code path): random fault schedules on random
profiles and programs, every trace checked against the oracle; nothing may be left behind."""

from __future__ import annotations

from bench.soak import KNOWN_RESET, soak

SESSIONS = 10
SEED = 6  # 11 of the 12 fault kinds, resets among them; about 5-10 s with tracemalloc on
# What may survive a session, over the second half of these 10 (the caches are still warming:
# up to ~0.2 kB and 2 objects a session here; 0 kB and 1 object, its record, once warm, see
# docs/benchmarks.md). A session left behind whole (cushion, recorder, device) keeps 0.3-4 MB
# and thousands of objects, so these bounds catch it and nothing smaller is claimed.
LEAK_B_PER_SESSION = 10_000
LEAK_OBJECTS_PER_SESSION = 50


def test_ten_soak_sessions_breach_nothing_and_leave_nothing_behind() -> None:
    report = soak(SESSIONS, SEED, trace_memory=True, programs=("lumbar-short",))
    assert len(report.sessions) == SESSIONS
    breaches = [(s.n, s.profile, s.program, s.faults, s.violations[:2]) for s in report.breaches]
    assert breaches == []  # the known missed reset (tests/test_oracle.py, xfail) is apart
    assert all(s.verdict in ("ok", KNOWN_RESET) for s in report.sessions)
    assert report.leaked == 0
    assert [s.fds for s in report.sessions] == [report.fds_before] * SESSIONS
    assert all(s.live_b > 0 for s in report.sessions)  # the heap was measured
    assert report.growth_per_session("live_b") < LEAK_B_PER_SESSION
    assert report.growth_per_session("gc_objects") < LEAK_OBJECTS_PER_SESSION

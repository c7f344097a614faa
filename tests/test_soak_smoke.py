"""A bounded soak (bench/soak.py, the same code path): random fault schedules on random
profiles and programs, every trace checked against the oracle; nothing may be left behind."""

from __future__ import annotations

from bench.soak import KNOWN_RESET, soak

SESSIONS = 10
SEED = 6  # 11 of the 12 fault kinds, resets among them; about 2-5 s


def test_ten_soak_sessions_breach_nothing_and_leave_nothing_behind() -> None:
    report = soak(SESSIONS, SEED, trace_memory=False, programs=("lumbar-short",))
    assert len(report.sessions) == SESSIONS
    breaches = [(s.n, s.profile, s.program, s.faults, s.violations[:2]) for s in report.breaches]
    assert breaches == []  # the known missed reset (tests/test_oracle.py, xfail) is apart
    assert all(s.verdict in ("ok", KNOWN_RESET) for s in report.sessions)
    assert report.leaked == 0
    assert [s.fds for s in report.sessions] == [report.fds_before] * SESSIONS

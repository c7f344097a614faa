"""The recorder's queries and assertion helpers (each helper must be able to fail)."""

from __future__ import annotations

import pytest

from firmware_profiles.commands import Keepalive, SetZone, Stop
from hil.recorder import Event, Recorder


def filled() -> Recorder:
    rec = Recorder(2)
    rec.add_command(0.0, SetZone(0, 3))
    rec.add_level(0.0, 0, 3)
    rec.add_command(1.0, SetZone(1, 5))
    rec.add_level(1.0, 1, 5)
    rec.add_command(2.0, Keepalive())
    rec.add(3.0, "watchdog")
    rec.add_level(3.0, 0, 0)
    rec.add_level(3.0, 1, 0)
    return rec


def test_queries() -> None:
    rec = filled()
    assert rec.levels(0) == [(0.0, 3), (3.0, 0)]
    assert rec.level_at(1, 2.5) == 5 and rec.level_at(1, 0.5) == 0
    assert rec.max_level(0) == 3 and rec.max_level() == 5
    assert rec.last_levels() == (0, 0)
    assert rec.commands(SetZone) == [SetZone(0, 3), SetZone(1, 5)]
    assert len(rec.commands()) == 3
    assert rec.first("watchdog") == Event(3.0, "watchdog", None)
    assert rec.first("auto_off") is None
    assert rec.count("level") == 4
    t, kind, detail = rec.events[1]  # events are plain tuples too
    assert (t, kind, detail) == (0.0, "level", (0, 3))


def test_assert_all_off_at_end() -> None:
    rec = filled()
    rec.assert_all_off_at_end()
    rec.add_level(4.0, 1, 2)
    with pytest.raises(AssertionError, match="still on"):
        rec.assert_all_off_at_end()
    rec.add_level(5.0, 1, 0)
    rec.add(5.0, "heat", 1)
    with pytest.raises(AssertionError, match="heat"):
        rec.assert_all_off_at_end()


def test_assert_never_above_and_under_a_ceiling() -> None:
    rec = filled()
    rec.assert_never_above(5)
    rec.assert_never_above(3, zone=0)
    with pytest.raises(AssertionError, match="reached level 5"):
        rec.assert_never_above(4)
    rec.assert_under(lambda t: 3.0 + 2.0 * t)  # 3 at t=0, 5 at t=1
    with pytest.raises(AssertionError, match="above ceiling"):
        rec.assert_under(lambda t: 1.0 + 2.0 * t)


def test_assert_no() -> None:
    rec = filled()
    rec.assert_no("auto_off")
    with pytest.raises(AssertionError, match="watchdog"):
        rec.assert_no("watchdog")


def test_clear_keeps_current_levels_as_the_start() -> None:
    rec = filled()
    rec.add_command(4.0, Stop())
    rec.add_level(4.0, 0, 7)
    rec.clear()
    assert rec.events == [] and rec.commands() == []
    assert rec.last_levels() == (7, 0)

"""The live display for people: body areas, words, limits said once, clamp notes at one instant."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from controller.display import LiveDisplay, join_areas
from controller.events import ClampApplied, Paused, Resumed, SetpointSent, StepStarted
from controller.limits import DEFAULT_LIMITS
from controller.plan import compile_program
from controller.runner import plan
from controller.words import zone_names
from firmware_profiles import load_profile
from protocols import load_program
from tests.support import simulate


def _screen(display: LiveDisplay) -> str:
    console = Console(record=True, width=120, color_system=None)
    console.print(display.render())
    return console.export_text()


@pytest.mark.parametrize("profile", ["lp4-ascii", "vb6-binary", "remote-stepper"])
def test_a_whole_session_in_words(profile: str) -> None:
    run = simulate("lumbar-short", profile)
    display = LiveDisplay(Console(width=120))
    seen = set()
    for event in run.events:
        display(event)
        if isinstance(event, StepStarted):
            seen.add(display.technique.split(" (")[0])
    text = _screen(display)
    prof = load_profile(profile)
    assert display.names == zone_names(prof)
    for zone, name in zip(prof.zones, display.names, strict=True):
        assert f"{name} " in text  # body areas ...
        if "-" in zone.id or zone.id in ("seat", "all"):
            assert zone.id not in text  # ... not motor names
    assert "over the kidneys, so kept gentle, at most 30%" in text
    assert "first 2 minutes and the warm-up: gentle start, at most 40%" in text
    assert "15:00 of 15:00, 0:00 left" in text and "finished" in text
    assert "stroking" in seen and not any("-" in t for t in seen)  # words, not ids
    assert "Ctrl-C stop gently" in text


def test_time_left_does_not_count_pauses() -> None:
    display = LiveDisplay(Console(width=120))
    for event in simulate("lumbar-short", "lp4-ascii").events[:1]:
        display(event)  # session_started
    display(Paused(100.0, "paused by the user"))
    display(SetpointSent(130.0, (0,) * 4, (0.0,) * 4, None, None, None, 0.0))
    assert display.position_s == 100.0
    assert display.status == "paused"
    display(Resumed(160.0))
    display(SetpointSent(200.0, (0,) * 4, (0.0,) * 4, None, None, None, 0.0))
    assert display.position_s == 140.0
    keyed = LiveDisplay(Console(width=120), keys=True)
    keyed(Paused(5.0, "link lost"))
    assert keyed.status == "paused: link lost - press space to continue"


def test_clamp_notes_only_for_cuts_a_person_feels() -> None:
    display = LiveDisplay(Console(width=120))
    display(simulate("lumbar-short", "lp4-ascii").events[0])
    display(ClampApplied(775.0, "upper-left", "kidney-zone cap", 0.55, 0.3))
    display(ClampApplied(776.0, "lower", "ramp rule", 0.52, 0.50))  # 2 points: not felt
    display(ClampApplied(777.0, "seat", "ramp rule", 0.9, 0.2, layer="device"))  # after a pause
    assert display.notes == [
        "12:55 lower back, left: the program asks 55%, the kidney limit keeps it at 30%"
    ]


def test_join_areas() -> None:
    assert join_areas(["lower back, left", "lower back, right"]) == "lower back"
    assert join_areas(["buttock, left"]) == "buttock, left"
    assert join_areas(["legs", "buttock, right", "buttock, left"]) == "legs and buttock"


@pytest.mark.parametrize("program", ["lumbar-classic", "lumbar-short", "radiculitis-gentle"])
def test_a_clamp_says_the_wish_and_the_result_of_one_instant(program: str) -> None:
    prof = load_profile("lp4-ascii")
    prog = load_program(program)
    raw = compile_program(prog, prof)
    timeline = plan(prog, prof, DEFAULT_LIMITS)
    wished = np.asarray(raw.level_matrix())
    played = np.asarray(timeline.level_matrix())
    assert timeline.clamps
    spans = 0
    for c in timeline.clamps:
        z = timeline.zones.index(c.zone)
        i = timeline.index_at(c.when_s)
        assert c.t_s <= c.when_s <= c.until_s
        # At that one instant the program asked at least `wanted` (earlier rules may have
        # lowered it first) and the cushion plays at most `got` (later rules may lower more).
        assert wished[i, z] >= c.wanted - 1e-9, c
        assert played[i, z] <= c.got + 1e-9, c
        spans += c.until_s > c.t_s
    assert spans  # merged spans exist, so the test covers the merge

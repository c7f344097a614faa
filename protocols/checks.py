"""Cross-field safety checks on a whole program (load-time layer), each naming its key path."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from protocols.limits import FINAL_END_MAX, MAX_SESSION_S
from protocols.phase import PHASE_ORDER, Phase

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from protocols.techniques import Technique

Problem = tuple[tuple[str | int, ...], str]


def _mmss(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "endless"
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def program_problems(avoid: Sequence[Technique], phases: Sequence[Phase]) -> Iterator[Problem]:
    """Yield (TOML key path, message) for every way the phases break a load-time rule."""
    if not phases:
        yield ("phase",), "a program needs at least one [[phase]]"
        return
    total = sum(p.duration_s for p in phases)
    if total > MAX_SESSION_S:
        # Point at the phase during which the limit is crossed.
        elapsed, crossing = 0.0, len(phases) - 1
        for i, phase in enumerate(phases):
            elapsed += phase.duration_s
            if elapsed > MAX_SESSION_S:
                crossing = i
                break
        yield (
            ("phase", crossing),
            f"the program lasts {_mmss(total)} (m:ss), longer than the "
            f"{_mmss(MAX_SESSION_S)} limit (article, line 270: at most 40 minutes), crossing "
            f"it in phase '{phases[crossing].name}'; shorten steps or remove repetitions",
        )
    yield from _phase_order(phases)
    yield from _avoided(avoid, phases)
    for i, phase in enumerate(phases):
        if phase.kind == "final":
            yield from _final_falls(i, phase)


def _phase_order(phases: Sequence[Phase]) -> Iterator[Problem]:
    kinds = [p.kind for p in phases]
    for i in range(1, len(phases)):
        if PHASE_ORDER[kinds[i]] < PHASE_ORDER[kinds[i - 1]]:
            yield (
                ("phase", i, "kind"),
                f"a '{kinds[i]}' phase cannot follow a '{kinds[i - 1]}' phase; order phases "
                "introductory, main, final (article, lines 128-132)",
            )
    for kind in ("introductory", "final"):
        if kinds.count(kind) > 1:
            second = [i for i, k in enumerate(kinds) if k == kind][1]
            yield (
                ("phase", second, "kind"),
                f"a program has at most one '{kind}' phase; merge their steps",
            )


def _avoided(avoid: Sequence[Technique], phases: Sequence[Phase]) -> Iterator[Problem]:
    for i, phase in enumerate(phases):
        for j, step in enumerate(phase.steps):
            if step.technique in avoid:
                yield (
                    ("phase", i, "step", j, "technique"),
                    f"'{step.technique.value}' is in this program's avoid list; use another "
                    "technique or remove it from [program] avoid",
                )


def _final_falls(i: int, phase: Phase) -> Iterator[Problem]:
    previous_end: float | None = None
    for j, step in enumerate(phase.steps):
        start, end = step.intensity
        if end > start:
            yield (
                ("phase", i, "step", j, "intensity"),
                f"in the final phase intensity must fall, but it rises {start:.0%} -> {end:.0%}; "
                "make the end no higher than the start (article, line 132)",
            )
        if previous_end is not None and step.technique.value != "heat" and start > previous_end:
            yield (
                ("phase", i, "step", j, "intensity"),
                f"in the final phase each step must start no higher than the previous one "
                f"ended ({previous_end:.0%}), but this one starts at {start:.0%}",
            )
        if step.technique.value != "heat":
            previous_end = end
    if previous_end is not None and previous_end > FINAL_END_MAX:
        last = len(phase.steps) - 1
        yield (
            ("phase", i, "step", last, "intensity"),
            f"the final phase must end low, at most {FINAL_END_MAX:.0%}, but it ends at "
            f"{previous_end:.0%}; lower the last step's end intensity",
        )

"""The article's rules for a whole session, checked as warnings: a program that breaks one
still loads (user programs are the user's), but `plan`, `run` and `program check` say so,
and the tests hold every built-in program to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from protocols.limits import MAX_SESSION_S, MIN_RECOMMENDED_S
from protocols.techniques import Technique

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from protocols.phase import Phase

Scheme = Literal["classic-lumbar"]

# Article, lines 128-132: introductory about 3 min, basic within 20 min, final a few minutes.
PHASE_RANGES_S: Final[dict[str, tuple[float, float, str]]] = {
    "introductory": (2 * 60.0, 5 * 60.0, "about 3 minutes (line 130)"),
    "main": (15 * 60.0, 25 * 60.0, "about 20 minutes (line 131)"),
    "final": (2 * 60.0, 6 * 60.0, "a few minutes (line 132)"),
}
# Article, lines 89 and 142: every technique 2-3 times. Stroking opens, links and closes the
# stages (lines 83-85, 254, 266, 282) and heat moves nothing, so they are not counted.
REPEATED_MIN, REPEATED_MAX = 2, 3
_NOT_REPEATED: Final = frozenset({Technique.STROKING, Technique.HEAT})

# Classic lumbar scheme, lines 380-385: stroking, squeezing, rubbing, kneading, vibration
# (patting), stroking; "you can not change the order" (line 280). Lines 83-85 run it in
# stages, each closed by shaking and stroking, so a stage may begin again after vibration,
# shaking or stroking; stroking itself may come anywhere (it opens and closes every stage).
_CLASSIC_RANK: Final[dict[Technique, int]] = {
    Technique.SQUEEZING: 1,
    Technique.RUBBING: 2,
    Technique.KNEADING: 3,
    Technique.VIBRATION_CONTINUOUS: 4,
    Technique.VIBRATION_INTERMITTENT: 4,
    Technique.SHAKING: 4,
}
_CLASSIC_WORDS = "stroking, squeezing, rubbing, kneading, vibration or shaking, stroking"


@dataclass(frozen=True, slots=True)
class RuleWarning:
    """One way a program departs from the article: the rule's id, where, and what to change."""

    rule: str  # "session-length" | "phase-length" | "repetitions" | "ends-with-stroking" | ...
    where: str  # "phase 'Main', step 3 (shaking)", or "program"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _step_where(phase: Phase, j: int) -> str:
    return f"phase '{phase.name}', step {j + 1} ({phase.steps[j].technique.value})"


def rule_warnings(phases: Sequence[Phase], scheme: Scheme | None = None) -> list[RuleWarning]:
    """Return every article rule the phases break, in program order."""
    return [*_session_length(phases), *_phase_lengths(phases), *_repetitions(phases),
            *_classic_order(phases, scheme), *_ends_with_stroking(phases)]


def _mmss(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _session_length(phases: Sequence[Phase]) -> Iterator[RuleWarning]:
    total = sum(p.duration_s for p in phases)
    if total < MIN_RECOMMENDED_S:
        yield RuleWarning(
            "session-length", "program",
            f"the program lasts {total / 60:.1f} min; the article recommends 20-40 min "
            f"(line 270): add steps or repetitions up to {_mmss(MIN_RECOMMENDED_S)}",
        )
    elif total > MAX_SESSION_S:  # refused at load time already; kept for completeness
        yield RuleWarning("session-length", "program",
                          f"the program lasts {total / 60:.1f} min, over 40 min (line 270)")


def _phase_lengths(phases: Sequence[Phase]) -> Iterator[RuleWarning]:
    for phase in phases:
        low, high, words = PHASE_RANGES_S[phase.kind]
        length = phase.duration_s
        if not low <= length <= high:
            yield RuleWarning(
                "phase-length", f"phase '{phase.name}'",
                f"the {phase.kind} phase lasts {_mmss(length)} (m:ss); the article gives "
                f"{words}: aim for {_mmss(low)}-{_mmss(high)}",
            )


def _repetitions(phases: Sequence[Phase]) -> Iterator[RuleWarning]:
    for phase in phases:
        if phase.kind != "main":
            continue
        for j, step in enumerate(phase.steps):
            if step.technique in _NOT_REPEATED:
                continue
            if not REPEATED_MIN <= step.repetitions <= REPEATED_MAX:
                yield RuleWarning(
                    "repetitions", _step_where(phase, j),
                    f"{_times(step.repetitions)}; the article does each technique "
                    f"{REPEATED_MIN}-{REPEATED_MAX} times (lines 89, 142): set repetitions = "
                    f"{REPEATED_MIN if step.repetitions < REPEATED_MIN else REPEATED_MAX}",
                )


def _times(n: int) -> str:
    return "done once" if n == 1 else f"done {n} times"


def _classic_order(phases: Sequence[Phase], scheme: Scheme | None) -> Iterator[RuleWarning]:
    if scheme != "classic-lumbar":
        return
    rank = 0  # 0: a stage may begin with any technique
    for phase in phases:
        for j, step in enumerate(phase.steps):
            t = step.technique
            if t is Technique.HEAT:
                continue
            if t is Technique.STROKING:
                rank = 0
                continue
            here = _CLASSIC_RANK.get(t)
            if here is None:
                yield RuleWarning(
                    "classic-order", _step_where(phase, j),
                    f"{t.value} is not part of the classic lumbar scheme ({_CLASSIC_WORDS}, "
                    "lines 380-385); use another scheme or another technique",
                )
                continue
            if rank == 4 and here < 4:
                rank = 0  # vibration or shaking closed the stage; a new one begins
            if here < rank:
                yield RuleWarning(
                    "classic-order", _step_where(phase, j),
                    f"{t.value} comes after a later technique of the classic lumbar scheme "
                    f"({_CLASSIC_WORDS}, lines 380-385; 'you can not change the order', line "
                    "280): move it earlier, or close the stage with shaking or stroking first",
                )
            rank = max(rank, here)


def _ends_with_stroking(phases: Sequence[Phase]) -> Iterator[RuleWarning]:
    moving = [(phase, j) for phase in phases for j, s in enumerate(phase.steps)
              if s.technique is not Technique.HEAT]
    if not moving:
        return
    phase, j = moving[-1]
    if phase.steps[j].technique is not Technique.STROKING:
        yield RuleWarning(
            "ends-with-stroking", _step_where(phase, j),
            "the session ends with this step; the article completes every massage with "
            "stroking (lines 282, 385, 473): add a stroking step at the end",
        )

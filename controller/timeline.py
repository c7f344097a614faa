"""The plan as plain values: setpoints held on a time grid, with phase and step markers."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Setpoint:
    """What the cushion should do now: intensity per device zone (0..1), frequency, heat, mode."""

    levels: tuple[float, ...]
    frequency_hz: float | None = None
    heat: float | None = None  # 0..1 of the device's top heat level
    mode: str | None = None

    def off(self) -> Setpoint:
        """Return the all-outputs-off setpoint of the same shape."""
        return Setpoint((0.0,) * len(self.levels))


@dataclass(frozen=True, slots=True)
class Marker:
    """A named moment in the plan: a phase or step begins."""

    t_s: float
    kind: str  # "phase" | "step"
    label: str
    phase: str
    technique: str | None = None
    repetitions: int = 1
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Clamp:
    """Where and why the envelope lowered the program's wish, from `t_s` to `until_s`.

    `wanted` and `got` are the values at one instant, `at_s`: the one with the largest cut.
    """

    t_s: float
    zone: str
    rule: str
    wanted: float
    got: float
    until_s: float = 0.0
    at_s: float | None = None  # None: at t_s

    @property
    def when_s(self) -> float:
        """Return the instant `wanted` and `got` were both true."""
        return self.t_s if self.at_s is None else self.at_s


@dataclass(slots=True)
class Timeline:
    """Setpoints held from each time until the next, ending at `duration_s` with all off."""

    zones: tuple[str, ...]
    times: list[float]
    setpoints: list[Setpoint]
    duration_s: float
    markers: list[Marker] = field(default_factory=list)
    clamps: list[Clamp] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    phase_of: list[str] = field(default_factory=list)  # phase kind of each sample

    def level_matrix(self) -> list[tuple[float, ...]]:
        """Return each sample's per-zone intensities."""
        return [sp.levels for sp in self.setpoints]

    def at(self, t_s: float) -> Setpoint:
        """Return the setpoint in force at `t_s` (all off before the start and after the end)."""
        if t_s < 0 or t_s >= self.duration_s or not self.times:
            return Setpoint((0.0,) * len(self.zones))
        return self.setpoints[bisect_right(self.times, t_s) - 1]

    def index_at(self, t_s: float) -> int:
        """Return the index of the sample in force at `t_s`."""
        return max(0, bisect_right(self.times, t_s) - 1)

    def peak(self) -> float:
        """Return the highest intensity any zone reaches."""
        return max((max(sp.levels, default=0.0) for sp in self.setpoints), default=0.0)

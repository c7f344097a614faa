"""Checks shared by tests: the ramp rule on a series of (time, intensity) points."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Ramp:
    """Checks a sequence of (t, value) against the ramp rule with one quantum of slack."""

    rate_per_s: float
    quantum: float
    violations: list[str] = field(default_factory=list)

    def check(self, points: list[tuple[float, float]], start: float | None = None) -> list[str]:
        """Return every place the running maximum rose faster than the rate allows.

        The ceiling is zero at `start` (default: the first point's time).
        """
        ceiling = 0.0
        origin = start if start is not None else (points[0][0] if points else 0.0)
        history: list[tuple[float, float]] = [(origin, 0.0)]
        for t, value in points:
            if value > ceiling:
                ceiling = value
                # Compare with every earlier ceiling: rise over any window stays under rate.
                for t0, c0 in history:
                    if ceiling - c0 > self.rate_per_s * (t - t0) + self.quantum + 1e-6:
                        self.violations.append(
                            f"ceiling rose {c0:.3f}->{ceiling:.3f} in {t - t0:.2f} s"
                        )
                        break
                history.append((t, ceiling))
        return self.violations


def wire_points(recorder: object, levels_max: int) -> list[tuple[float, float]]:
    """Return (t, highest zone level as a fraction) after every commanded level change."""
    from hil.recorder import Recorder

    assert isinstance(recorder, Recorder)
    changes = sorted(
        (t, z, level) for z in range(recorder.zone_count) for t, level in recorder.levels(z)
    )
    current = [recorder.off_level] * recorder.zone_count
    points: list[tuple[float, float]] = []
    for t, z, level in changes:
        current[z] = level
        point = (t, max(current) / levels_max)
        if points and points[-1][0] == t:
            points[-1] = point  # one frame sets several zones: keep the state after all of them
        else:
            points.append(point)
    return points


def assert_wire_respects_envelope(
    run: object, limits: object, *, link_jitter_s: float = 0.0
) -> None:
    """Check what the simulator received: caps per zone, the ramp rule, and all off at the end.

    `link_jitter_s`: how unevenly a real link may delay frames (arrival times are checked).
    """
    from controller.limits import SafetyLimits
    from controller.safety import zone_caps
    from tests.support import Run

    assert isinstance(run, Run) and isinstance(limits, SafetyLimits)
    profile, rec = run.profile, run.cushion.recorder
    top = profile.intensity.max
    for z, rules in enumerate(zone_caps(profile, limits, sparing=run.program.sparing)):
        cap = min(c for c, _ in rules)
        rec.assert_never_above(profile.intensity.to_device(cap), z)
    resumed = [0.0] + [e.t_s + run.events[0].t_s for e in run.events if e.kind == "resumed"]
    points = wire_points(rec, top)
    for start, end in zip(resumed, [*resumed[1:], float("inf")], strict=True):
        window = [(t, v) for t, v in points if start <= t < end]
        slack = 1 / top + limits.ramp_per_s * link_jitter_s
        violations = Ramp(limits.ramp_per_s, slack).check(window, start)
        assert not violations, violations[:5]
    rec.assert_all_off_at_end()

"""Checks shared by tests: the ramp rule on a series of (time, intensity) points."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Ramp:
    """Checks a sequence of (t, value) against the ramp rule with one quantum of slack."""

    rate_per_s: float
    quantum: float
    violations: list[str] = field(default_factory=list)

    def check(self, points: list[tuple[float, float]]) -> list[str]:
        """Return every place the running maximum rose faster than the rate allows."""
        ceiling = 0.0
        history: list[tuple[float, float]] = [(points[0][0] if points else 0.0, 0.0)]
        for t, value in points:
            if value > ceiling:
                ceiling = value
                # Compare with every earlier ceiling: rise over any window stays under rate.
                for t0, c0 in history:
                    if ceiling - c0 > self.rate_per_s * (t - t0) + self.quantum + 1e-6:
                        self.violations.append(
                            f"ceiling rose {c0:.3f}->{ceiling:.3f} in {t - t0:.2f} s")
                        break
                history.append((t, ceiling))
        return self.violations

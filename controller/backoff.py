"""Reconnect back-off: capped, fully jittered exponential delays (pure, no I/O).

The formula is Home Assistant's and aiomqtt's, ``uniform(0, 1.5 ** min(10, attempt))``:
full jitter keeps many controllers (or cushions) that lost the same adapter from retrying in
step, and the cap keeps both the wait bounded (about 58 s) and the float finite: the former
uncapped ``1.5 ** attempt`` raised OverflowError after about 1,750 attempts.
"""

from __future__ import annotations

import random
from typing import Protocol

BACKOFF_CAP_EXPONENT = 10
"""Attempts past this one wait no longer: at most ``1.5 ** 10`` (57.7 s) plus the floor."""

BACKOFF_FLOOR_S = 0.2
"""Shortest wait (s), so a link that fails at once is not retried in a busy loop."""


class Uniform(Protocol):
    """Anything with ``uniform(a, b)``: the `random` module or a seeded `random.Random`."""

    def uniform(self, a: float, b: float, /) -> float:
        """Return a number in [a, b]."""
        ...


def backoff_ceiling(attempt: int) -> float:
    """Return the longest jittered part (s) of the wait after failed attempt ``attempt``."""
    return 1.5 ** min(BACKOFF_CAP_EXPONENT, max(0, attempt))


def backoff_delay(attempt: int, *, rng: Uniform = random) -> float:
    """Return the wait (s) before retry number ``attempt`` (1 after the first failure).

    ``BACKOFF_FLOOR_S + rng.uniform(0, 1.5 ** min(10, attempt))``: within
    ``[0.2, 0.2 + 57.7]`` s whatever the attempt, so attempt 10,000 neither overflows nor
    waits longer than attempt 10. A negative attempt counts as 0.
    """
    return BACKOFF_FLOOR_S + rng.uniform(0.0, backoff_ceiling(attempt))


__all__ = ["BACKOFF_CAP_EXPONENT", "BACKOFF_FLOOR_S", "backoff_ceiling", "backoff_delay"]

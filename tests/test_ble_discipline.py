"""BLE link discipline: capped jittered back-off, a fresh scan on every (re)connect, a
connect lock, a write lock that keeps MTU chunks of one frame together, and failures
classified by bleak's and bleak-retry-connector's exception types, not their text.

Link tests run the real bleak facade over the simulated radio (`hil.ble`) on the virtual
clock: no wall-clock waits, no mocks of our own code.
"""

from __future__ import annotations

import math
import random

import pytest

from controller.backoff import BACKOFF_FLOOR_S, backoff_ceiling, backoff_delay

CAP_S = 1.5**10


# -- back-off ------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, 1, 2, 9, 10, 11, 1_750, 1_800, 10_000, 10**9])
def test_backoff_stays_finite_and_within_the_cap(attempt: int) -> None:
    rng = random.Random(attempt)
    for _ in range(200):
        delay = backoff_delay(attempt, rng=rng)
        assert math.isfinite(delay)
        assert BACKOFF_FLOOR_S <= delay <= BACKOFF_FLOOR_S + CAP_S


def test_the_uncapped_formula_overflowed_where_the_capped_one_does_not() -> None:
    with pytest.raises(OverflowError):
        _ = 1.5**10_000  # what the reconnect loop computed before
    assert backoff_ceiling(10_000) == backoff_ceiling(10) == CAP_S


def test_backoff_ceiling_grows_by_half_per_attempt_up_to_attempt_10() -> None:
    assert [backoff_ceiling(n) for n in range(12)] == [1.5**n for n in range(11)] + [CAP_S]
    assert backoff_ceiling(-5) == 1.0  # a negative attempt counts as 0


def test_backoff_is_deterministic_with_a_seeded_rng() -> None:
    first = [backoff_delay(n, rng=random.Random(7)) for n in range(1, 30)]
    again = [backoff_delay(n, rng=random.Random(7)) for n in range(1, 30)]
    assert first == again


def test_backoff_is_jittered_over_the_whole_range() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(10, rng=rng) - BACKOFF_FLOOR_S for _ in range(2_000)]
    # Full jitter: spread over [0, cap], not bunched near the top like cap * (1 +- 10 %).
    assert min(delays) < 0.05 * CAP_S and max(delays) > 0.95 * CAP_S
    assert 0.4 * CAP_S < sum(delays) / len(delays) < 0.6 * CAP_S


def test_backoff_uses_the_module_rng_by_default() -> None:
    random.seed(3)
    a = backoff_delay(4)
    random.seed(3)
    assert backoff_delay(4) == a

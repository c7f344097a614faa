"""Time for sessions: the running event loop is the clock, real, scaled or virtual.

Everything (session, device facade, simulator) reads `loop.time()` and sleeps until
absolute deadlines, so swapping the loop swaps the clock for all of them at once.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import TYPE_CHECKING

# The scaled and virtual clocks are the simulator's; the controller only picks one.
from hil.vtime import ScaledTimeLoop, VirtualTimeLoop

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "SPIN_MARGIN_S",
    "ScaledTimeLoop",
    "VirtualTimeLoop",
    "is_real_time",
    "loop_factory",
    "sleep_until",
]

# The loop rounds its waits to whole milliseconds; waking this early and yielding until
# the deadline brings wire lateness from ~1 ms median to microseconds (HIL-NOTES.md).
SPIN_MARGIN_S = 0.002


def loop_factory(speed: float | None) -> Callable[[], asyncio.AbstractEventLoop]:
    """Return a factory for the loop of a run: real (None or 1), scaled (N) or virtual (inf)."""
    if speed is None or speed == 1:
        return _real_time_loop
    if speed == float("inf"):
        return VirtualTimeLoop
    return lambda: ScaledTimeLoop(speed)


def _real_time_loop() -> asyncio.AbstractEventLoop:
    """Return a standard loop that waits with poll(2) rather than epoll.

    On a loaded host, epoll left bytes written to a pty in the kernel for 100-260 ms where
    poll did not (measured for the sped-up simulator, see hil.vtime.ScaledTimeLoop and
    docs/benchmarks.md); the real clock uses the same selector. A handful of fds: poll is
    cheap. Not measured on a USB serial adapter.
    """
    return asyncio.SelectorEventLoop(selectors.PollSelector())


def is_real_time(loop: asyncio.AbstractEventLoop) -> bool:
    """Tell whether the loop's clock is the real one (so busy-waiting buys precision)."""
    return type(loop).time is asyncio.BaseEventLoop.time


async def sleep_until(deadline: float) -> None:
    """Sleep until the loop's clock reads `deadline`, precisely on a real clock."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    if now >= deadline:
        return  # already there: no yield, so a virtual clock wastes no loop turn
    if not is_real_time(loop):
        await asyncio.sleep(deadline - now)
        return
    if deadline - now > SPIN_MARGIN_S:
        await asyncio.sleep(deadline - now - SPIN_MARGIN_S)
    while loop.time() < deadline:  # noqa: ASYNC110 - a deliberate spin onto the deadline
        await asyncio.sleep(0)

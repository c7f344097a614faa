"""Time for sessions: the running event loop is the clock, real, scaled or virtual.

Everything (session, device facade, simulator) reads `loop.time()` and sleeps until
absolute deadlines, so swapping the loop swaps the clock for all of them at once.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

# The loop rounds its waits to whole milliseconds; waking this early and yielding until
# the deadline brings wire lateness from ~1 ms median to microseconds (HIL-NOTES.md).
SPIN_MARGIN_S = 0.002


class _ScaledSelector(selectors.BaseSelector):
    """Wraps a real selector, shortening every wait by the loop's speed factor."""

    def __init__(self, inner: selectors.BaseSelector, speed: float) -> None:
        self._inner = inner
        self._speed = speed

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        return self._inner.select(None if timeout is None else timeout / self._speed)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class ScaledTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock runs `speed` times faster than real time (simulator only)."""

    def __init__(self, speed: float) -> None:
        super().__init__(_ScaledSelector(selectors.DefaultSelector(), speed))
        self.speed = speed

    def time(self) -> float:
        """Return scaled monotonic time in seconds."""
        return time.monotonic() * self.speed


def loop_factory(speed: float | None) -> Callable[[], asyncio.AbstractEventLoop]:
    """Return a factory for the loop of a run: real (None or 1), scaled (N) or virtual (inf)."""
    if speed is None or speed == 1:
        return asyncio.new_event_loop
    if speed == float("inf"):
        from hil.vtime import VirtualTimeLoop

        return VirtualTimeLoop
    return lambda: ScaledTimeLoop(speed)


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

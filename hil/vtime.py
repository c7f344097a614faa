"""A virtual-time asyncio loop: idle waits jump the clock instead of sleeping.

Timers (``call_at``, ``asyncio.sleep``, ``wait_for``) fire in order at their virtual times,
so a 30-minute session runs in milliseconds and deterministically. Real file descriptors
are still polled (with timeout 0), so a pty works, but then time races the real I/O:
use the real clock for pty tests.

`ScaledTimeLoop` runs the real clock sped up (``cushion run --speed N``); a stall of the host
passes on it at real time rather than N times faster (see the class).
"""

from __future__ import annotations

import asyncio
import math
import selectors
import time
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping

    from _typeshed import FileDescriptorLike

T = TypeVar("T")


class WrappedSelector(selectors.BaseSelector):
    """Delegates to a real selector; subclasses change only how long `select` waits."""

    def __init__(self, real: selectors.BaseSelector) -> None:
        self._real = real

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        """Register a real file object with the wrapped selector."""
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        """Unregister a file object from the wrapped selector."""
        return self._real.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        """Change the events or data of a registered file object."""
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait for real I/O as the wrapped selector does."""
        return self._real.select(timeout)

    def close(self) -> None:
        """Close the wrapped selector."""
        self._real.close()

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        """Return the wrapped selector's file-object map."""
        return self._real.get_map()


class VirtualSelector(WrappedSelector):
    """Wrap a real selector: poll without blocking; an idle timed wait advances the clock."""

    def __init__(self, real: selectors.BaseSelector, start_s: float = 0.0) -> None:
        super().__init__(real)
        self.now_s = start_s
        self._zero_polls = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Poll real fds at once; with nothing ready, advance virtual time by ``timeout`` (s)."""
        if timeout == 0 or (timeout is not None and len(self._real.get_map()) <= 1):
            # Callbacks are ready, so time stands still; or the only fd is the loop's own
            # wake-up pipe (no pty: nothing but another thread or a signal can write to it).
            # A poll costs a syscall per pass; every 8th keeps real I/O flowing, a few passes
            # (microseconds of a virtual run) later at most.
            self._zero_polls = (self._zero_polls + 1) & 7
            if self._zero_polls:
                if timeout:
                    self.now_s += timeout
                return []
        ready = self._real.select(0)
        if ready or timeout is None:
            # Nothing scheduled at all: only real I/O can wake us, so block on it for real.
            return ready if ready else self._real.select(None)
        if timeout > 0:
            self.now_s += timeout
        return []


class ScaledSelector(WrappedSelector):
    """Wrap a real selector, shortening every wait by the loop's speed factor."""

    def __init__(self, real: selectors.BaseSelector, speed: float) -> None:
        super().__init__(real)
        self._speed = speed
        self.clock: ScaledTimeLoop | None = None  # told how long each wait was meant to be

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait 1/speed of the loop-clock timeout in real time."""
        real = None if timeout is None else timeout / self._speed
        if self.clock is not None:
            self.clock.granting(math.inf if real is None else real)
        return self._real.select(real)


# On a scaled clock, the stretch of any one real gap between two readings of the clock, beyond
# the wait the loop asked for, that still runs at `speed` (s, real time). Both sides of the
# wire already allow this much real jitter times the speed (controller.device._REAL_JITTER_S,
# hil.firmware._ARRIVAL_JITTER_S); the rest of a longer stall runs at real time.
STALL_S = 0.002


class ScaledTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock runs `speed` times faster than real time (simulator only).

    The clock runs at `speed` while the loop waits for its next timer, and through short gaps
    (up to `stall_s` of real time each). Time the loop loses to a stall beyond that, when the
    host is loaded (the process is not scheduled, a thread holds the GIL, a callback is slow),
    passes at real time: a 100 ms stall at speed 26 is 100 ms on the loop clock, not 2.6 s.
    A real device sees a stalled controller's gap in real time too; at 26x a 100 ms stall would
    otherwise look like a controller silent for 2.6 s (leases lapse, replies "time out", frames
    read late look too close together) to a simulator that shares its loop and was just as
    stalled. So a loaded host slows the sped-up run down a little instead of failing it;
    `slipped_s` says by how much (s of real time that ran at real rate).
    """

    def __init__(self, speed: float, *, stall_s: float = STALL_S) -> None:
        # poll(2), not epoll: with epoll, on a loaded 2-core host, frames the controller wrote
        # to the pty reached the simulator 100-260 ms late and together (bench/first_run.py,
        # docs/benchmarks.md), past the reply time-out and the cushion's lease at 26x; with
        # poll none did. Likely why: polling a pty with nothing ready waits for input queued
        # for the kernel's flush worker (n_tty_poll -> tty_buffer_flush_work), epoll waits
        # for that worker's wake-up. A handful of fds: poll is cheap.
        selector = ScaledSelector(selectors.PollSelector(), speed)
        super().__init__(selector)
        self.speed = speed
        self.stall_s = stall_s
        self.slipped_s = 0.0
        self._last = time.monotonic()
        self._offset = 0.0  # loop time = monotonic * speed - offset
        self._grant = 0.0  # real seconds of the coming gap that are a wait the loop asked for
        selector.clock = self

    def granting(self, wait_s: float) -> None:
        """Note that the loop is about to wait up to ``wait_s`` (real s) for I/O or a timer."""
        self.time()  # the gap so far is judged without this grant
        self._grant = wait_s

    def time(self) -> float:
        """Return scaled monotonic time in seconds; stalls beyond `stall_s` pass at real rate."""
        now = time.monotonic()
        gap = now - self._last
        self._last = now
        allowed = self._grant + self.stall_s
        self._grant = 0.0
        if gap > allowed:
            lost = gap - allowed
            self.slipped_s += lost
            self._offset += lost * (self.speed - 1.0)
        return now * self.speed - self._offset


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose ``time()`` is virtual (s, starting at ``start_s``)."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._vselector = VirtualSelector(selectors.DefaultSelector(), start_s)
        super().__init__(self._vselector)
        # Virtual time lands exactly on deadlines up to float rounding; be generous.
        self._clock_resolution = 1e-6

    def time(self) -> float:
        """Return the virtual time in seconds."""
        return self._vselector.now_s

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` (>= 0) without running anything."""
        if seconds < 0:
            raise ValueError("virtual time cannot go backwards")
        self._vselector.now_s += seconds


def run_virtual(coro: Coroutine[Any, Any, T], *, start_s: float = 0.0) -> T:
    """Run ``coro`` to completion on a fresh `VirtualTimeLoop`, like `asyncio.run`."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(start_s)) as runner:
        return runner.run(coro)

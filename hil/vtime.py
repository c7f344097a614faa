"""A virtual-time asyncio loop: idle waits jump the clock instead of sleeping.

Timers (``call_at``, ``asyncio.sleep``, ``wait_for``) fire in order at their virtual times,
so a 30-minute session runs in milliseconds and deterministically. Real file descriptors
are still polled (with timeout 0), so a pty works, but then time races the real I/O:
use the real clock for pty tests.
"""

from __future__ import annotations

import asyncio
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
        if timeout == 0:
            # Callbacks are ready, so time stands still: polling fds on every such pass costs a
            # syscall per callback batch; every 8th pass keeps real I/O flowing.
            self._zero_polls = (self._zero_polls + 1) & 7
            if self._zero_polls:
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

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait 1/speed of the loop-clock timeout in real time."""
        return self._real.select(None if timeout is None else timeout / self._speed)


class ScaledTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock runs `speed` times faster than real time (simulator only)."""

    def __init__(self, speed: float) -> None:
        super().__init__(ScaledSelector(selectors.DefaultSelector(), speed))
        self.speed = speed

    def time(self) -> float:
        """Return scaled monotonic time in seconds."""
        return time.monotonic() * self.speed


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

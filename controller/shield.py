"""Finishing cleanup that must not be abandoned: shielded from cancellation, bounded in time."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable

log = logging.getLogger(__name__)
T = TypeVar("T")


async def finish(aw: Awaitable[T], timeout_s: float) -> tuple[T | None, bool]:
    """Run `aw` to its end (or `timeout_s`) even if cancelled meanwhile.

    Returns its result (None on error or time-out) and whether a cancellation arrived, so
    the caller can finish the rest of its cleanup and then re-raise it.
    """
    task = asyncio.ensure_future(asyncio.wait_for(aw, timeout_s))
    cancelled = False
    while not task.done():
        try:
            # asyncio.wait never cancels what it waits for: a second signal, a second
            # cancel, cannot abandon the all-off half written.
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if task.cancelled():
        return None, cancelled
    exc = task.exception()
    if exc is not None:
        if not isinstance(exc, TimeoutError):
            log.error("cleanup failed: %r", exc)
        return None, cancelled
    return task.result(), cancelled

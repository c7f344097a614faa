"""Run a simulated cushion on a pty until cancelled (what ``cushion sim`` runs)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hil.cushion import SimulatedCushion
from hil.links import PtyLink

if TYPE_CHECKING:
    from collections.abc import Callable

    from firmware_profiles import Profile


async def run_standalone(
    profile: Profile | str,
    *,
    stop_event: asyncio.Event | None = None,
    on_ready: Callable[[str], object] | None = None,
    cushion: SimulatedCushion | None = None,
    baudrate: int | None = None,
) -> SimulatedCushion:
    """Serve a simulated cushion on a fresh pty until ``stop_event`` is set or the task is
    cancelled; ``on_ready(port)`` gets the port path once a controller may open it.

    Prints nothing. Returns the cushion (its recorder holds what happened) when stopped by
    the event; cancellation propagates after the pty is closed.
    """
    if cushion is None:
        if isinstance(profile, str):
            from firmware_profiles import load_profile

            profile = load_profile(profile)
        cushion = SimulatedCushion(profile)
    stop = stop_event or asyncio.Event()
    async with PtyLink(cushion, baudrate=baudrate) as link:
        if on_ready is not None:
            on_ready(link.port)
        await stop.wait()
    return cushion

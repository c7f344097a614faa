"""Run a simulated cushion on a pty until cancelled (what ``cushion sim`` runs)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hil.cushion import SimulatedCushion
from hil.links import PtyLink

if TYPE_CHECKING:
    from collections.abc import Callable

    from firmware_profiles import Profile
    from hil.faults import FaultSchedule


async def run_standalone(
    profile: Profile | str,
    *,
    stop_event: asyncio.Event | None = None,
    on_ready: Callable[[str], object] | None = None,
    cushion: SimulatedCushion | None = None,
    baudrate: int | None = None,
    faults: FaultSchedule | None = None,
) -> SimulatedCushion:
    """Serve a simulated cushion on a fresh pty until ``stop_event`` is set or the task is
    cancelled; ``on_ready(port)`` gets the port path once a controller may open it (and the
    new path again whenever a ``hang_up`` fault reopens the pty).

    ``faults``: a schedule (`hil.faults.load_schedule`) played from the moment the pty is
    ready; use ``after = "connected"`` in it to count from the controller's arrival.

    Prints nothing. Returns the cushion (its recorder holds what happened) when stopped by
    the event; cancellation propagates after the pty is closed.
    """
    if cushion is None:
        if isinstance(profile, str):
            from firmware_profiles import load_profile

            profile = load_profile(profile)
        cushion = SimulatedCushion(profile)
    stop = stop_event or asyncio.Event()
    async with PtyLink(cushion, baudrate=baudrate, on_reopen=on_ready) as link:
        player = None
        if faults is not None:
            from hil.faults import apply_schedule

            player = apply_schedule(cushion, faults)
        try:
            if on_ready is not None:
                on_ready(link.port)
            await stop.wait()
        finally:
            if player is not None:
                player.cancel()
    return cushion

"""pytest fixtures for the simulated cushion (enable: ``pytest_plugins = ["hil.pytest_plugin"]``).

- ``make_cushion("lp4-ascii", spin_up_s=0.0)`` builds a `SimulatedCushion` from a profile name
  (or a loaded `Profile`).
- ``async with pty_cushion("lp4-ascii") as (cushion, port):`` serves one on a real pty (inside a
  running loop, real clock); open ``port`` with pyserial like any serial port.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from firmware_profiles import Profile
    from hil.cushion import SimulatedCushion


class MakeCushion(Protocol):
    """Factory: profile name (or Profile) -> SimulatedCushion."""

    def __call__(self, profile: str | Profile, **kwargs: Any) -> SimulatedCushion: ...


class PtyCushion(Protocol):
    """Factory: profile name (or Profile) -> async context giving ``(cushion, port)``."""

    def __call__(
        self, profile: str | Profile, **kwargs: Any
    ) -> contextlib.AbstractAsyncContextManager[tuple[SimulatedCushion, str]]: ...


def build_cushion(profile: str | Profile, **kwargs: Any) -> SimulatedCushion:
    """Return a `SimulatedCushion` for a profile name or a loaded profile."""
    from firmware_profiles import load_profile
    from hil.cushion import SimulatedCushion

    loaded = load_profile(profile) if isinstance(profile, str) else profile
    return SimulatedCushion(loaded, **kwargs)


@contextlib.asynccontextmanager
async def serve_on_pty(
    profile: str | Profile, **kwargs: Any
) -> AsyncIterator[tuple[SimulatedCushion, str]]:
    """Serve a fresh simulated cushion on a pty for the duration of the block."""
    from hil.links import PtyLink

    cushion = build_cushion(profile, **kwargs)
    async with PtyLink(cushion) as link:
        yield cushion, link.port


@pytest.fixture
def make_cushion() -> MakeCushion:
    """Factory fixture: ``make_cushion("vb6-binary")`` -> SimulatedCushion."""
    return build_cushion


@pytest.fixture
def pty_cushion() -> PtyCushion:
    """Factory fixture: ``async with pty_cushion("lp4-ascii") as (cushion, port)``."""
    return serve_on_pty

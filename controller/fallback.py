"""What a cushion does by itself when the controller cannot reach it, in plain words."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firmware_profiles import Profile


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:g} s"


def fallback_text(profile: Profile) -> str:
    """Say how the cushion itself turns off when no stop reaches it, and how soon."""
    limits = profile.limits
    if limits.watchdog_s:
        return (
            f"the cushion's own watchdog turns its outputs off after "
            f"{_duration(limits.watchdog_s)} without a command."
        )
    if limits.lease_s:
        return f"each output's lease on the cushion runs out within {_duration(limits.lease_s)}."
    if limits.auto_off_s:
        return (
            f"this cushion has no watchdog: it keeps running until its own auto-off after "
            f"{_duration(limits.auto_off_s)}. Switch it off at its power switch now."
        )
    return "this cushion never turns itself off: switch it off at its power switch now."


def deadman_warning(profile: Profile) -> str | None:
    """Return a plain warning when a dead controller cannot stop this cushion, else None."""
    limits = profile.limits
    if limits.watchdog_s or limits.lease_s:
        return None
    after = (
        f"until its own auto-off after {_duration(limits.auto_off_s)}"
        if limits.auto_off_s
        else "until it is switched off"
    )
    return (
        f"If this program or computer stops unexpectedly, cushion '{profile.name}' cannot be "
        f"stopped by it and keeps running {after}: keep its power switch or remote in reach."
    )

"""`cushion profile check` and `cushion program check`: load, exercise and report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.limits import DEFAULT_LIMITS
from firmware_profiles.commands import (
    Command,
    Keepalive,
    Press,
    Query,
    SetAll,
    SetFrequency,
    SetHeat,
    SetMode,
    SetZone,
    Stop,
)

if TYPE_CHECKING:
    from firmware_profiles import Profile


def _samples(profile: Profile) -> list[tuple[str, Command]]:
    """Return one command of every kind the profile has a frame for, at telling values."""
    top = profile.intensity.max
    n = len(profile.zones)
    lease = profile.limits.lease_s
    out: list[tuple[str, Command]] = [("stop", Stop())]
    if profile.supports("set_zone"):
        out += [("set_zone", SetZone(z, top, lease)) for z in range(n)]
    if profile.supports("set_all"):
        out.append(("set_all", SetAll(tuple(range(n)) if n <= top else (top,) * n, lease)))
    if profile.supports("set_frequency") and profile.frequency is not None:
        out.append(
            ("set_frequency", SetFrequency(profile.frequency.to_device(profile.frequency.max_hz)))
        )
    if profile.supports("set_heat") and profile.heat is not None:
        out.append(("set_heat", SetHeat(profile.heat.levels)))
    if profile.supports("set_mode"):
        out += [("set_mode", SetMode(m)) for m in profile.modes.values()]
    for button in ("intensity_up", "intensity_down", "next_mode", "heat_toggle", "power"):
        if profile.supports(f"press.{button}"):
            out.append((f"press.{button}", Press(button)))
    if profile.supports("keepalive"):
        out.append(("keepalive", Keepalive()))
    if profile.supports("query"):
        out.append(("query", Query()))
    return out


def check_profile(file: str) -> list[str]:
    """Load a profile and round-trip every frame it declares through its codec."""
    from controller.errors import UsageError
    from firmware_profiles import Codec, load_profile

    profile = load_profile(file)
    codec = Codec(profile)
    lines = [
        f"{profile.name}: {profile.info.title} ({profile.control}, {len(profile.zones)} zones)"
    ]
    for name, command in _samples(profile):
        frame = codec.encode(command)
        parsed = codec.command_parser().feed(frame)
        if parsed != [command]:
            raise UsageError(
                f"frame '{name}' does not decode to what it encodes: "
                f"{command} -> {frame!r} -> {parsed}.",
                hint="Check that frame's template fields.",
            )
        lines.append(f"  ok  {name:<22} {frame!r}")
    limits = profile.limits
    if limits.watchdog_s is None:
        lines.append(
            "  note: no device watchdog; the controller's keepalive cannot be checked against one"
        )
    lines.append(f"profile {file} is usable")
    return lines


def check_program(file: str, profile_name: str) -> list[str]:
    """Load a program, plan it for a profile, and report its length, clamps and notes."""
    from controller.runner import plan
    from firmware_profiles import load_profile
    from protocols import load_program

    program = load_program(file)
    profile = load_profile(profile_name)
    timeline = plan(program, profile, DEFAULT_LIMITS)
    lines = [
        f"{program.name}: {program.title}, {timeline.duration_s / 60:.1f} min, "
        f"{sum(len(p.steps) for p in program.phases)} steps in {len(program.phases)} phases"
    ]
    lines += [f"  note: {n}" for n in (*program.notes(), *timeline.notes)]
    rules = sorted({c.rule for c in timeline.clamps})
    if rules:
        lines.append(f"  the safety envelope lowers it by: {', '.join(rules)}")
    lines.append(f"  peak intensity after the envelope: {timeline.peak():.0%}")
    lines.append(f"program {file} is usable")
    return lines

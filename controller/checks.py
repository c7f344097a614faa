"""`cushion profile check` and `cushion program check`: load, exercise and report."""

from __future__ import annotations

import asyncio
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
    from firmware_profiles import Codec, Profile


def _samples(profile: Profile) -> list[tuple[str, Command]]:
    """Return every kind of command the controller may send, at its extreme values."""
    top, off = profile.intensity.max, profile.intensity.min
    n = len(profile.zones)
    lease = profile.limits.lease_s
    out: list[tuple[str, Command]] = [("stop", Stop())]
    if profile.supports("set_zone"):
        out += [("set_zone", SetZone(z, level, lease)) for z in range(n) for level in (top, off)]
    if profile.supports("set_all"):
        out.append(("set_all", SetAll(tuple(range(n)) if n <= top else (top,) * n, lease)))
        out.append(("set_all", SetAll((top,) * n, lease)))
        out.append(("set_all", SetAll((off,) * n, lease)))
    if profile.supports("set_frequency") and profile.frequency is not None:
        freq = profile.frequency
        raws = freq.raw_values if freq.table is not None else (
            freq.to_device(freq.min_hz), freq.to_device(freq.max_hz))
        out += [("set_frequency", SetFrequency(raw)) for raw in raws]
    if profile.supports("set_heat") and profile.heat is not None:
        out += [("set_heat", SetHeat(level)) for level in (profile.heat.levels, 0)]
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
    """Load a profile and run every construct `run` will: the controller's codec on every
    frame at extreme values, and the simulator obeying them and answering (status included).

    ProfileError (exit 2) naming the file and the frame if anything would fail in a run.
    """
    from firmware_profiles import Codec, load_profile
    from firmware_profiles.commands import ProfileError

    profile = load_profile(file)
    codec = Codec(profile)
    lines = [
        f"{profile.name}: {profile.info.title} ({profile.control}, {len(profile.zones)} zones)"
    ]
    seen: set[str] = set()
    samples = _samples(profile)
    for name, command in samples:
        try:
            frame = codec.encode(command)
            parsed = codec.command_parser().feed(frame)
        except ProfileError as exc:
            raise ProfileError(f"frame '{name}' cannot carry {command}: {exc.message}",
                               file=file, key=exc.key or f"frames.{name}",
                               hint="Check that frame's template fields.") from exc
        if parsed != [command]:
            raise ProfileError(
                f"frame '{name}' does not decode to what it encodes: "
                f"{command} -> {frame!r} -> {parsed}.",
                file=file, key=f"frames.{name}",
                hint="Check that frame's template fields (a lease the field cannot hold "
                "exactly, for example).",
            )
        if name not in seen:
            seen.add(name)
            lines.append(f"  ok  {name:<22} {frame!r}")
    lines += _simulate(profile, codec, samples, file)
    limits = profile.limits
    if limits.watchdog_s is None:
        lines.append(
            "  note: no device watchdog; the controller's keepalive cannot be checked against one"
        )
    lines.append(f"profile {file} is usable")
    return lines


def _simulate(
    profile: Profile, codec: Codec, samples: list[tuple[str, Command]], file: str
) -> list[str]:
    """Play the samples into the simulator at the device's rate; check every reply decodes."""
    from firmware_profiles.commands import BadFrame, ProfileError, Reply
    from firmware_profiles.problem import Problem
    from hil.cushion import SimulatedCushion
    from hil.firmware import NAK_TOO_FAST
    from hil.vtime import run_virtual

    try:
        cushion = SimulatedCushion(profile)
    except (ProfileError, Problem) as exc:
        raise ProfileError(f"the simulator cannot speak this profile: {exc}", file=file,
                           key=getattr(exc, "key", None)) from exc
    parser = codec.reply_parser()
    replies: list[tuple[str, Reply | BadFrame]] = []
    current = ["?"]
    cushion.on_transmit = lambda data: replies.extend((current[0], r) for r in parser.feed(data))
    gap = 1.5 / profile.limits.max_update_hz
    queries = [s for s in samples if s[0] == "query"]
    presses = [s for s in samples if s[0] == "press.intensity_up"] * (
        profile.intensity.max if queries else 0
    )
    # Every sample, then (stepping, if it can be asked) up to the top level, then a status
    # at the extremes.
    plan = [*samples, *presses, *queries]

    async def play() -> None:
        for name, command in plan:
            current[0] = name
            try:
                cushion.feed(codec.encode(command))
            except ProfileError as exc:
                raise ProfileError(f"the simulator cannot answer frame '{name}': {exc.message}",
                                   file=file, key=exc.key or "replies",
                                   hint="Check the reply frames' fields.") from exc
            await asyncio.sleep(gap)
        if profile.supports("boot"):
            current[0] = "boot"
            cushion.reboot()  # the simulator sends the boot frame the controller must read

    run_virtual(play())
    for name, reply in replies:
        if isinstance(reply, BadFrame):
            raise ProfileError(f"the controller cannot decode the device's answer to '{name}': "
                               f"{reply.data!r} ({reply.reason}).", file=file, key="replies",
                               hint="Check the reply frames' templates.")
        code = reply.fields.get("code")
        if reply.kind == "nak" and code != NAK_TOO_FAST:
            raise ProfileError(f"the simulated device refuses frame '{name}' (nak code {code}).",
                               file=file, key=f"frames.{name}",
                               hint="A value the controller sends is outside what the profile "
                               "declares; check its ranges and lease.")
    kinds = sorted({reply.kind for _, reply in replies if isinstance(reply, Reply)})
    if profile.supports("boot") and "boot" not in kinds:
        raise ProfileError("the controller does not read the simulated restart's boot frame as "
                           "[replies.boot].", file=file, key="replies.boot",
                           hint="Make the boot frame differ from every other reply.")
    return [f"  ok  simulator obeys every frame; replies decode ({', '.join(kinds) or 'none'})"]


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

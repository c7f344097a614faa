"""Cross-field checks a profile must pass before anything may drive a cushion with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from firmware_profiles.ascii_template import AsciiFrame
from firmware_profiles.commands import Button, ProfileError
from firmware_profiles.compiler import Compiled, compile_profile
from firmware_profiles.problem import Problem
from protocols.techniques import Technique

if TYPE_CHECKING:
    from firmware_profiles.fieldcodec import FieldCodec
    from firmware_profiles.model import Profile

# Nak codes a device sends (the simulator's: 1 bad frame, 2 out of range, 3 unsupported,
# 4 too fast); a nak frame must be able to carry the highest.
NAK_CODE_MAX = 4
# Hottest surface a status reply may report, C (the simulator's heater settles at 44 C).
STATUS_TEMP_MAX_C = 60


def check_profile(profile: Profile) -> None:
    """Raise Problem (with the key path) for the first thing that makes the profile unusable."""
    _zones(profile)
    _modes(profile)
    _limits(profile)
    _frames(profile)
    _replies(profile, compile_profile(profile))


def _zones(profile: Profile) -> None:
    ids: set[str] = set()
    motors: dict[int, str] = {}
    for i, zone in enumerate(profile.zones):
        if zone.id in ids:
            raise Problem(("zone", i, "id"), f"zone id '{zone.id}' is used twice.")
        ids.add(zone.id)
        for motor in zone.motors:
            if motor in motors:
                raise Problem(("zone", i, "motors"),
                              f"motor {motor} already belongs to zone '{motors[motor]}'.",
                              "Give every motor to one zone only.")
            motors[motor] = zone.id


def _modes(profile: Profile) -> None:
    techniques = [str(t) for t in Technique]
    for technique, mode in profile.technique_modes.items():
        loc = ("technique_modes", technique)
        if technique not in techniques:
            raise Problem(loc, f"'{technique}' is not a technique.",
                          f"Use one of: {', '.join(techniques)}.")
        if mode not in profile.modes:
            known = ", ".join(profile.modes) or "none: add a [modes] table"
            raise Problem(loc, f"mode '{mode}' is not in [modes] ({known}).")


def _limits(profile: Profile) -> None:
    limits = profile.limits
    # The controller paces every frame, keepalives included, at 1/max_update_hz at most; a
    # shorter keepalive is a busy loop that only the rate limit stops (1e-4 s: 8,000 frames/s).
    fastest = 1.0 / limits.max_update_hz
    if limits.keepalive_s is not None and limits.keepalive_s < fastest - 1e-12:
        raise Problem(("limits", "keepalive_s"), f"keepalive_s ({limits.keepalive_s:g}) is "
                      f"shorter than one frame interval (1/max_update_hz = {fastest:g} s).",
                      f"Use at least {fastest:g} s; a few times per watchdog period is enough.")
    if limits.lease_s is not None and limits.lease_s < 2 * fastest - 1e-12:
        raise Problem(("limits", "lease_s"), f"lease_s ({limits.lease_s:g}) is shorter than two "
                      f"frame intervals ({2 * fastest:g} s at max_update_hz = "
                      f"{limits.max_update_hz:g}): leases would lapse before they can be renewed.",
                      "Use a lease of a second or more.")
    if limits.watchdog_s is not None:
        if limits.keepalive_s is None:
            raise Problem(("limits", "watchdog_s"), "the device has a watchdog but keepalive_s "
                          "is not set.", "Set keepalive_s well below watchdog_s.")
        if limits.keepalive_s >= limits.watchdog_s:
            raise Problem(("limits", "keepalive_s"), f"keepalive_s ({limits.keepalive_s:g}) "
                          f"must be below watchdog_s ({limits.watchdog_s:g}), or the device "
                          "stops between keepalives.", "Use at most half the watchdog.")
    if (limits.lease_s is not None and limits.keepalive_s is not None
            and limits.lease_s <= limits.keepalive_s):
        raise Problem(("limits", "lease_s"), f"lease_s ({limits.lease_s:g}) must be above "
                      f"keepalive_s ({limits.keepalive_s:g}), or leases lapse before renewal.")
    if limits.ack_every_command and profile.replies.ack is None:
        raise Problem(("limits", "ack_every_command"), "the device acks every command but "
                      "there is no [replies.ack] frame.", "Add [replies.ack] or set it false.")


def _frames(profile: Profile) -> None:
    frames = profile.frames
    buttons = get_args(Button)
    for button in frames.press:
        if button not in buttons:
            raise Problem(("frames", "press", button), f"'{button}' is not a button.",
                          f"Use one of: {', '.join(buttons)}.")
    if frames.stop is None:
        raise Problem(("frames",), "there is no stop frame; a cushion without an idempotent "
                      "all-off cannot be made safe.", "Add [frames.stop].")
    if profile.control == "stepping":
        missing = [b for b in ("intensity_up", "intensity_down") if b not in frames.press]
        if missing:
            raise Problem(("profile", "control"), f"a stepping profile needs press frames "
                          f"intensity_up and intensity_down (missing {', '.join(missing)}).",
                          "Add [frames.press.intensity_up] and [frames.press.intensity_down].")
    elif frames.set_zone is None and frames.set_all is None:
        raise Problem(("profile", "control"), "an absolute profile needs a set_zone or set_all "
                      "frame.", 'Add one, or set control = "stepping".')
    if "next_mode" in frames.press and not profile.modes:
        raise Problem(("frames", "press", "next_mode"), "next_mode cycles through [modes], "
                      "which is empty.", "Add [modes] in the order the button cycles them.")


def _reply_extremes(profile: Profile) -> dict[str, int]:
    """Return the highest value a device may report in each reply field it knows."""
    top = profile.intensity.max
    values = {"level": top, "power": 1, "temp_c": STATUS_TEMP_MAX_C, "code": NAK_CODE_MAX}
    values.update({f"level{i}": top for i in range(len(profile.zones))})
    if profile.modes:
        values["mode"] = max(profile.modes.values())
    if profile.heat is not None:
        values["heat"] = profile.heat.levels
    if profile.frequency is not None:
        values["frequency"] = max(profile.frequency.raw_values)
    return values


def _replies(profile: Profile, compiled: Compiled) -> None:
    """Refuse a reply frame whose fields cannot hold what the device will report.

    A status reply carries the device's levels, mode, heat and frequency; if the highest of
    them does not fit its field, the device (and the simulator) cannot say it, and a run
    fails half-way instead of at load time.
    """
    extremes = _reply_extremes(profile)
    for kind, frame in compiled.replies.items():
        fields: list[FieldCodec] = (list(frame.fields) if isinstance(frame, AsciiFrame)
                                    else [slot.field for slot in frame.slots])
        for field in fields:
            value = extremes.get(field.key)
            if value is None:
                continue
            try:
                field.to_raw(value)
            except ProfileError as exc:
                raise Problem(("replies", kind), f"the {kind} reply cannot report "
                              f"{field.key} = {value}: {exc.message.rstrip('.')}.",
                              "Make the field wider or change its scale/offset, or lower "
                              "the profile's range.") from exc

"""Cross-field checks a profile must pass before anything may drive a cushion with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from firmware_profiles.commands import Button
from firmware_profiles.compiler import compile_profile
from firmware_profiles.problem import Problem
from protocols.techniques import Technique

if TYPE_CHECKING:
    from firmware_profiles.model import Profile


def check_profile(profile: Profile) -> None:
    """Raise Problem (with the key path) for the first thing that makes the profile unusable."""
    _zones(profile)
    _modes(profile)
    _limits(profile)
    _frames(profile)
    compile_profile(profile)


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

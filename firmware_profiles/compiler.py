"""Compile every frame of a profile, checking field names, ranges and fits against the profile."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from firmware_profiles.ascii_template import AsciiFrame, Loc, compile_ascii
from firmware_profiles.binary_template import BinaryFrame, compile_binary
from firmware_profiles.fieldcodec import Allowed, FieldCodec
from firmware_profiles.problem import Problem

if TYPE_CHECKING:
    from firmware_profiles.frames import FieldOptions
    from firmware_profiles.model import Profile

Frame = AsciiFrame | BinaryFrame

COMMAND_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "set_zone": ("zone", "level", "duration", "mask"),
    "set_all": ("level", "duration", "mask"),
    "set_frequency": ("value",),
    "set_heat": ("level",),
    "set_mode": ("mode",),
}
# Each inner tuple: at least one of these must be present.
REQUIRED_FIELDS: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "set_zone": (("level",), ("zone", "mask")),
    "set_all": (("level",),),
    "set_frequency": (("value",),),
    "set_heat": (("level",),),
    "set_mode": (("mode",),),
}
_RESERVED_REPLY: Final = ("mask", "length", "checksum")


@dataclass(frozen=True, slots=True)
class Compiled:
    """Every compiled frame of a profile, by frame name (commands) and by kind (replies)."""

    commands: dict[str, Frame]
    replies: dict[str, Frame]
    zone_masks: tuple[int, ...]  # motor bitmask per zone (bit_base 0)


def zone_masks(profile: Profile, bit_base: int) -> tuple[int, ...]:
    """Return each zone's motor bitmask, bit 0 being motor number bit_base."""
    return tuple(sum(1 << (m - bit_base) for m in zone.motors) for zone in profile.zones)


class _Fields:
    """Builds the FieldCodec of one field of one frame, knowing what the profile allows."""

    def __init__(self, profile: Profile, frame: str, is_reply: bool, check_values: bool) -> None:
        self.profile = profile
        self.frame = frame
        self.is_reply = is_reply
        self.check_values = check_values
        self.names: set[str] = set()

    def _domain(self, name: str, loc: Loc, opts: FieldOptions) -> tuple[Allowed, float]:
        """Return (allowed values, highest value to fit) of a command field."""
        p = self.profile
        frame = self.frame
        if name == "zone":
            return (0, len(p.zones) - 1), len(p.zones) - 1
        if name == "level" and frame in ("set_zone", "set_all"):
            return (p.intensity.min, p.intensity.max), p.intensity.max
        if name == "level":  # set_heat
            if p.heat is None:
                raise Problem(("frames", frame), "set_heat needs a [heat] section.",
                              "Add [heat] levels = N, or remove the frame.")
            return (0, p.heat.levels), p.heat.levels
        if name == "value":
            if p.frequency is None:
                raise Problem(("frames", frame), "set_frequency needs a [frequency] section.",
                              "Add [frequency], or remove the frame.")
            raws = p.frequency.raw_values
            allowed: Allowed = frozenset(raws) if p.frequency.table else (raws[0], raws[-1])
            return allowed, max(raws)
        if name == "mode":
            if not p.modes:
                raise Problem(("frames", frame), "set_mode needs a [modes] table.",
                              "Add [modes] name = number, or remove the frame.")
            return frozenset(p.modes.values()), max(p.modes.values())
        if name == "mask":
            if any(m < opts.bit_base for zone in p.zones for m in zone.motors):
                raise Problem(loc, f"a motor number is below the mask's bit_base {opts.bit_base}.")
            top = 0
            for mask in zone_masks(p, opts.bit_base):
                top |= mask
            return None, top
        # duration: seconds, checked against the field's capacity at the lease length
        if p.limits.lease_s is None:
            raise Problem(("limits",), f"{frame} carries a duration but limits.lease_s is not set.",
                          "Set lease_s (seconds) under [limits].")
        return None, p.limits.lease_s

    def __call__(
        self, name: str, index: int | None, opts: FieldOptions, capacity: int | None, loc: Loc
    ) -> FieldCodec:
        """Return the codec of field `name` (zone repeat `index`), raising Problem at loc."""
        frame = self.frame
        self.names.add(name)
        key = name if index is None else f"{name}{index}"
        label = f"{frame}.{key}"
        to_map = dict(opts.map) if opts.map is not None else None
        from_map: dict[int | str, int] | None = None
        if to_map is not None:
            from_map = {raw: value for value, raw in to_map.items()}
            if len(from_map) != len(to_map):
                raise Problem((*loc, "map"), "two values map to the same raw value.")
            too_big = [r for r in to_map.values() if isinstance(r, int) and capacity is not None
                       and not 0 <= r <= capacity]
            if too_big:
                raise Problem((*loc, "map"),
                              f"raw {too_big[0]} does not fit the field (0..{capacity}).")
        if self.is_reply:
            if name in _RESERVED_REPLY:
                raise Problem(loc, f"'{name}' is not a reply field name.")
            return FieldCodec(key, label, False, opts.scale, opts.offset, to_map, from_map,
                              capacity, None)
        allowed_names = COMMAND_FIELDS.get(frame, ())
        if name not in allowed_names:
            can = ", ".join(allowed_names) or "no fields"
            raise Problem(loc, f"{frame} has no field '{name}'; it can carry: {can}.")
        if opts.per_zone != (frame == "set_all" and name == "level"):
            raise Problem(loc, "per_zone is for set_all's level (one per zone) only."
                          if opts.per_zone else "set_all's level needs per_zone = true.")
        allowed, top = self._domain(name, loc, opts)
        if to_map is not None:
            if isinstance(allowed, tuple):
                missing = [v for v in range(allowed[0], allowed[1] + 1) if v not in to_map]
            else:
                missing = sorted(set(allowed or ()) - set(to_map))
            if missing:
                raise Problem((*loc, "map"), f"the map has no entry for value {missing[0]}.")
        else:
            raw_top = math.floor(top * opts.scale + 1e-9) + opts.offset
            if capacity is not None and raw_top > capacity:
                raise Problem(loc, f"{label} reaches {top:g}, raw {raw_top}, which does not fit "
                              f"the field (at most {capacity}).",
                              "Make the field wider or change scale/offset.")
            if opts.offset < 0 and name != "duration":
                raise Problem(loc, f"{label}: a negative offset gives negative raw values.")
        return FieldCodec(key, label, name == "duration", opts.scale, opts.offset, to_map,
                          from_map, capacity, allowed if self.check_values else None)


def compile_profile(profile: Profile, *, check_values: bool = True) -> Compiled:
    """Compile all frames; Problem at the offending key if any frame is malformed."""
    frames = profile.frames
    zones = len(profile.zones)
    ascii_mode = frames.encoding == "ascii"
    if ascii_mode and not frames.line_ending:
        raise Problem(("frames", "encoding"), "an ASCII profile needs frames.line_ending.",
                      'Add line_ending = "\\r\\n" under [frames].')
    if not ascii_mode and (frames.line_ending is not None or frames.checksum is not None):
        raise Problem(("frames", "encoding"), "line_ending and checksum under [frames] are for "
                      "ASCII profiles; binary frames put a checksum item in their layout.")

    commands: dict[str, Frame] = {}
    replies: dict[str, Frame] = {}
    for group, specs, out in (
        ("frames", profile.frame_specs(), commands),
        ("replies", profile.reply_specs(), replies),
    ):
        for name, spec in specs:
            loc: Loc = (group, *name.split("."))
            fields = _Fields(profile, name, group == "replies", check_values)
            frame: Frame
            if ascii_mode:
                assert frames.line_ending is not None
                frame = compile_ascii(name, spec, loc, line_ending=frames.line_ending,
                                      checksum=frames.checksum, zones=zones, make_field=fields)
            else:
                frame = compile_binary(name, spec, loc, zones=zones, make_field=fields)
            for need in REQUIRED_FIELDS.get(name, ()) if group == "frames" else ():
                if not fields.names & set(need):
                    raise Problem(loc, f"{name} must carry a {' or '.join(need)} field.")
            if name == "nak" and "code" not in fields.names:
                raise Problem(loc, "nak must carry a `code` field (the device's error number).")
            out[name] = frame
        if not ascii_mode:
            _check_distinct(out, group)
    return Compiled(commands, replies, zone_masks(profile, 0))


def _check_distinct(frames: dict[str, Frame], group: str) -> None:
    """Refuse two binary frames whose constant bytes never tell them apart."""
    items = [(n, f) for n, f in frames.items() if isinstance(f, BinaryFrame)]
    for i, (name_a, a) in enumerate(items):
        for name_b, b in items[i + 1 :]:
            consts_b = dict(b.consts)
            span = min(a.length, b.length)
            if all(consts_b.get(o, v) == v for o, v in a.consts if o < span):
                raise Problem((group, *name_b.split(".")),
                              f"frames {name_a} and {name_b} cannot be told apart.",
                              "Give each its own command byte.")

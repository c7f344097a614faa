"""The sans-IO codec: commands and replies to bytes and back, both sides, one profile."""

from __future__ import annotations

from itertools import compress
from typing import TYPE_CHECKING, Any, cast, get_args

from firmware_profiles.ascii_template import AsciiFrame
from firmware_profiles.binary_template import BinaryFrame
from firmware_profiles.commands import (
    BadFrame,
    Button,
    Command,
    Keepalive,
    Press,
    ProfileError,
    Query,
    Reply,
    SetAll,
    SetFrequency,
    SetHeat,
    SetMode,
    SetZone,
    Stop,
)
from firmware_profiles.compiler import Frame, compile_profile, zone_masks
from firmware_profiles.memo import remember
from firmware_profiles.parsers import AsciiEngine, BinaryEngine, Values
from firmware_profiles.problem import Problem

if TYPE_CHECKING:
    from collections.abc import Callable

    from firmware_profiles.model import Profile

_STOP = Stop()
_KEEPALIVE = Keepalive()
_QUERY = Query()
_PRESSES: dict[str, Press] = {b: Press(b) for b in get_args(Button)}
# Commands whose frames carry values: worth remembering once encoded.
_VALUED: frozenset[type] = frozenset({SetZone, SetAll, SetFrequency, SetHeat, SetMode})


class CommandParser:
    """Device side: turns a byte stream into commands; feed it any chunks."""

    __slots__ = ("_engine",)

    def __init__(self, engine: AsciiEngine[Command] | BinaryEngine[Command]) -> None:
        self._engine = engine

    def feed(self, data: bytes) -> list[Command | BadFrame]:
        """Consume bytes; return the commands (or bad frames) they complete, in order."""
        return self._engine.feed(data)


class ReplyParser:
    """Controller side: turns a byte stream into replies; feed it any chunks."""

    __slots__ = ("_engine",)

    def __init__(self, engine: AsciiEngine[Reply] | BinaryEngine[Reply]) -> None:
        self._engine = engine

    def feed(self, data: bytes) -> list[Reply | BadFrame]:
        """Consume bytes; return the replies (or bad frames) they complete, in order."""
        return self._engine.feed(data)


class Codec:
    """Encodes and parses one profile's frames; compile once, then microseconds per frame."""

    def __init__(self, profile: Profile, *, check_values: bool = True) -> None:
        """Compile the profile's templates; check_values=False lets simulator tests send
        values the profile forbids (they must still fit their field)."""
        try:
            compiled = compile_profile(profile, check_values=check_values)
        except Problem as exc:
            key = ".".join(str(p) for p in exc.loc)
            raise ProfileError(exc.message, key=key, hint=exc.hint) from exc
        self.profile = profile
        self._commands = compiled.commands
        self._replies = compiled.replies
        self._zones = len(profile.zones)
        self._off = profile.intensity.min
        self._lease = profile.limits.lease_s
        self._level_keys = tuple(f"level{i}" for i in range(self._zones))
        self._masks: dict[str, tuple[int, ...]] = {}
        self._mask_zone: dict[str, dict[int, int]] = {}
        for name in ("set_zone", "set_all"):
            frame = self._commands.get(name)
            if frame is not None and frame.mask_base is not None:
                masks = zone_masks(profile, frame.mask_base)
                self._masks[name] = masks
                self._mask_zone[name] = {m: i for i, m in enumerate(masks)}
        # Frames without fields are the same bytes every time.
        self._fixed: dict[str, bytes] = {}
        for name, frame in self._commands.items():
            if name in ("stop", "keepalive", "query") or name.startswith("press."):
                self._fixed[name] = frame.encode({})
        self._encoders: dict[type, Callable[[Any], bytes]] = {
            SetZone: self._set_zone,
            SetAll: self._set_all,
            SetFrequency: self._set_frequency,
            SetHeat: self._set_heat,
            SetMode: self._set_mode,
            Press: self._press,
            Stop: self._stop,
            Keepalive: self._keepalive,
            Query: self._query,
        }
        self._makers: dict[str, Callable[[Values, bytes], Command | BadFrame]] = {
            "set_zone": self._make_set_zone,
            "set_all": self._make_set_all,
            "set_frequency": lambda v, _: SetFrequency(int(v["value"])),
            "set_heat": lambda v, _: SetHeat(int(v["level"])),
            "set_mode": lambda v, _: SetMode(int(v["mode"])),
            "stop": lambda v, _: _STOP,
            "keepalive": lambda v, _: _KEEPALIVE,
            "query": lambda v, _: _QUERY,
        }
        for button, press in _PRESSES.items():
            self._makers[f"press.{button}"] = _constant(press)
        # Plain binary set_all frames (one byte per value, see BinaryFrame.plain) are built
        # and read by slot position, without a values dict.
        self._set_all_plain: BinaryFrame | None = None
        self._set_all_shape = ""  # "levels", "mask+levels" (frame order) or "" (any other)
        self._set_all_order: tuple[int, ...] = ()  # slot i is (mask, *levels)[order[i]]
        self._set_all_levels: tuple[int, ...] = ()  # slot of each zone's level
        self._set_all_mask_at: int | None = None  # slot of the mask
        frame = self._commands.get("set_all")
        if isinstance(frame, BinaryFrame) and frame.plain:
            sources = ("mask", *self._level_keys)
            if set(frame.keys) <= set(sources) and set(self._level_keys) <= set(frame.keys):
                self._set_all_plain = frame
                self._set_all_order = tuple(sources.index(key) for key in frame.keys)
                if frame.keys == self._level_keys:
                    self._set_all_shape = "levels"
                elif frame.keys == sources:
                    self._set_all_shape = "mask+levels"
                self._set_all_levels = tuple(frame.keys.index(key) for key in self._level_keys)
                if "mask" in frame.keys:
                    self._set_all_mask_at = frame.keys.index("mask")
        masks = self._masks.get("set_all", ())
        # With off at 0 and zones on motors of their own, the mask is the sum of the masks of
        # the zones whose level byte is not 0 (itertools.compress does that in C).
        self._sum_masks = self._off == 0 and sum(masks) == _or_all(masks)
        self._all_on = _or_all(masks)
        # Memo tables (bounded): frames already encoded, and whole frames already parsed.
        self._sent: dict[Command, bytes] = {}
        self._sent_replies: dict[tuple[object, ...], bytes] = {}
        self._received: dict[bytes, tuple[Command, ...]] = {}
        self._received_replies: dict[bytes, tuple[Reply, ...]] = {}

    # controller side -------------------------------------------------------------------
    def encode(self, command: Command) -> bytes:
        """Return the frame for a command; ProfileError if the profile lacks it or a value is
        out of range."""
        kind = type(command)
        if kind not in _VALUED:
            return self._encode(command)  # fixed frames are ready-made bytes already
        # Commands are frozen values, so equal commands always give equal bytes.
        try:
            frame = self._sent.get(command)
        except TypeError:  # unhashable: a SetAll given a list of levels
            return self._encoders[kind](command)
        if frame is None:
            frame = self._encoders[kind](command)
            remember(self._sent, command, frame)
        return frame

    def leased(self, frame_name: str) -> bool:
        """Return whether set_zone / set_all frames carry a lease duration."""
        frame = self._commands.get(frame_name)
        return frame is not None and any(f.key == "duration" for f in _fields(frame))

    def reply_fields(self, kind: str) -> tuple[str, ...]:
        """Return the field names a reply carries (per-zone ones as level0, level1, ...)."""
        frame = self._replies.get(kind)
        return () if frame is None else tuple(f.key for f in _fields(frame))

    def reply_parser(self) -> ReplyParser:
        """Return a fresh incremental parser of the device's replies."""
        make = self._make_reply
        memo = self._received_replies
        if self.profile.frames.encoding == "ascii":
            ending = self._line_ending()
            ascii_frames = [(k, f) for k, f in self._replies.items() if isinstance(f, AsciiFrame)]
            return ReplyParser(AsciiEngine[Reply](ascii_frames, ending, make, memo=memo,
                                                  fresh=_fresh_reply))
        frames = [(k, f) for k, f in self._replies.items() if isinstance(f, BinaryFrame)]
        plain = {k: _plain_reply(k, f.keys) for k, f in frames if f.plain}
        return ReplyParser(BinaryEngine[Reply](frames, make, memo=memo, fresh=_fresh_reply,
                                               plain=plain))

    # device side -----------------------------------------------------------------------
    def command_parser(self) -> CommandParser:
        """Return a fresh incremental parser of the controller's commands."""
        make = self._make_command
        memo = self._received  # commands are immutable values: a memo hit may share them
        if self.profile.frames.encoding == "ascii":
            ending = self._line_ending()
            frames = [(k, f) for k, f in self._commands.items() if isinstance(f, AsciiFrame)]
            return CommandParser(AsciiEngine[Command](frames, ending, make, memo=memo))
        binary = [(k, f) for k, f in self._commands.items() if isinstance(f, BinaryFrame)]
        plain: dict[str, Callable[[tuple[int, ...], bytes], Command | BadFrame]] = {
            k: _by_keys(self._makers[k], f.keys) for k, f in binary if f.plain and k in self._makers
        }
        if self._set_all_plain is not None:
            plain["set_all"] = self._read_set_all
        return CommandParser(BinaryEngine[Command](binary, make, memo=memo, plain=plain))

    def encode_reply(self, reply: Reply) -> bytes:
        """Return the frame for a reply; ProfileError if the profile has no such reply."""
        try:
            key = (reply.kind, *reply.fields.items())
            data = self._sent_replies.get(key)
        except TypeError:  # a field value that cannot be a key: encode it every time
            return self._encode_reply(reply)
        if data is None:
            data = self._encode_reply(reply)
            remember(self._sent_replies, key, data)
        return data

    # internals ---------------------------------------------------------------------------
    def _encode(self, command: Command) -> bytes:
        """Encode without the memo (the generic path)."""
        try:
            encoder = self._encoders[type(command)]
        except KeyError:
            raise ProfileError(f"{command!r} is not a command.") from None
        return encoder(command)

    def _encode_reply(self, reply: Reply) -> bytes:
        """Encode a reply without the memo (the generic path)."""
        frame = self._replies.get(reply.kind)
        if frame is None:
            raise ProfileError(f"profile '{self.profile.name}' has no '{reply.kind}' reply.",
                               key=f"replies.{reply.kind}")
        return frame.encode(reply.fields)

    def _line_ending(self) -> bytes:
        ending = self.profile.frames.line_ending
        assert ending is not None
        return ending.encode("ascii")

    def _frame(self, name: str) -> Frame:
        frame = self._commands.get(name)
        if frame is None:
            raise ProfileError(f"profile '{self.profile.name}' has no '{name}' frame.",
                               key=f"frames.{name}",
                               hint="Check profile.supports() before sending it.")
        return frame

    def _fixed_frame(self, name: str) -> bytes:
        data = self._fixed.get(name)
        if data is None:
            self._frame(name)  # raises
        assert data is not None
        return data

    def _set_zone(self, c: SetZone) -> bytes:
        frame = self._frame("set_zone")
        values: dict[str, Any] = {
            "zone": c.zone,
            "level": c.level,
            "duration": self._lease if c.duration_s is None else c.duration_s,
        }
        if frame.mask_base is not None:
            if not 0 <= c.zone < self._zones:
                raise ProfileError(f"set_zone.zone = {c.zone} is outside 0..{self._zones - 1}.")
            values["mask"] = self._masks["set_zone"][c.zone]
        return frame.encode(values)

    def _set_all(self, c: SetAll) -> bytes:
        frame = self._frame("set_all")
        levels = c.levels
        if len(levels) != self._zones:
            raise ProfileError(f"set_all needs {self._zones} levels, got {len(levels)}.")
        if frame is self._set_all_plain:
            try:
                body = bytes(levels)
                shape = self._set_all_shape
                if shape == "levels":
                    return frame.encode_plain(body)
                mask = self._mask_of(body) if frame.mask_base is not None else 0
                if shape:
                    return frame.encode_plain(_BYTES[mask] + body)
                raws = (mask, *body)
                return frame.encode_plain([raws[i] for i in self._set_all_order])
            except (ValueError, TypeError):
                pass  # a value not allowed or not an int: the generic path names or converts it
        values: dict[str, Any] = dict(zip(self._level_keys, levels, strict=True))
        values["duration"] = self._lease if c.duration_s is None else c.duration_s
        if frame.mask_base is not None:
            mask = 0
            off = self._off
            for level, zone_mask in zip(levels, self._masks["set_all"], strict=True):
                if level > off:
                    mask |= zone_mask
            values["mask"] = mask
        return frame.encode(values)

    def _set_frequency(self, c: SetFrequency) -> bytes:
        return self._frame("set_frequency").encode({"value": c.value})

    def _set_heat(self, c: SetHeat) -> bytes:
        return self._frame("set_heat").encode({"level": c.level})

    def _set_mode(self, c: SetMode) -> bytes:
        return self._frame("set_mode").encode({"mode": c.mode})

    def _press(self, c: Press) -> bytes:
        return self._fixed_frame(f"press.{c.button}")

    def _stop(self, c: Stop) -> bytes:
        return self._fixed_frame("stop")

    def _keepalive(self, c: Keepalive) -> bytes:
        return self._fixed_frame("keepalive")

    def _query(self, c: Query) -> bytes:
        return self._fixed_frame("query")

    def _make_command(self, name: str, values: Values, raw: bytes) -> Command | BadFrame:
        return self._makers[name](values, raw)

    def _make_reply(self, name: str, values: Values, raw: bytes) -> Reply | BadFrame:
        return Reply(name, values)  # type: ignore[arg-type]  # reply fields are never floats

    def _make_set_zone(self, values: Values, raw: bytes) -> SetZone | BadFrame:
        zone = values.get("zone")
        mask = values.get("mask")
        if mask is not None:
            by_mask = self._mask_zone["set_zone"].get(int(mask))
            if by_mask is None or (zone is not None and zone != by_mask):
                return BadFrame(raw, f"motor mask {int(mask):#x} does not match a zone")
            zone = by_mask
        assert zone is not None
        duration = values.get("duration")
        return SetZone(int(zone), int(values["level"]), None if duration is None else duration)

    def _mask_of(self, levels: bytes | tuple[int, ...]) -> int:
        """Return the set_all motor mask for byte levels: the motors of every zone that is on."""
        masks = self._masks["set_all"]
        if self._sum_masks:
            return self._all_on if 0 not in levels else sum(compress(masks, levels))
        mask = 0
        off = self._off
        for level, zone_mask in zip(levels, masks, strict=False):  # lengths checked
            if level > off:
                mask |= zone_mask
        return mask

    def _read_set_all(self, raws: tuple[int, ...], raw: bytes) -> SetAll | BadFrame:
        """`_make_set_all` for a plain frame's slot values (frame order)."""
        shape = self._set_all_shape
        if shape == "mask+levels":
            levels = raws[1:]
        elif shape == "levels":
            levels = raws
        else:
            levels = tuple(map(raws.__getitem__, self._set_all_levels))
        at = self._set_all_mask_at
        if at is not None:
            mask = raws[at]
            if self._mask_of(levels) != mask:
                return BadFrame(raw, f"motor mask {mask:#x} disagrees with the levels")
        return SetAll(levels, None)

    def _make_set_all(self, values: Values, raw: bytes) -> SetAll | BadFrame:
        # Levels decode as ints (only durations are floats).
        levels = cast("tuple[int, ...]", tuple(map(values.__getitem__, self._level_keys)))
        mask = values.get("mask")
        if mask is not None:
            want = 0
            for level, zone_mask in zip(levels, self._masks["set_all"], strict=True):
                if level > self._off:
                    want |= zone_mask
            if want != mask:
                return BadFrame(raw, f"motor mask {int(mask):#x} disagrees with the levels")
        duration = values.get("duration")
        return SetAll(levels, None if duration is None else duration)


def _fresh_reply(reply: Reply) -> Reply:
    """Return a copy with its own fields dict, so no caller can alter another's reply."""
    return Reply(reply.kind, dict(reply.fields))


def _or_all(masks: tuple[int, ...]) -> int:
    out = 0
    for mask in masks:
        out |= mask
    return out


_BYTES: tuple[bytes, ...] = tuple(bytes((n,)) for n in range(256))


def _by_keys(
    make: Callable[[Values, bytes], Command | BadFrame], keys: tuple[str, ...]
) -> Callable[[tuple[int, ...], bytes], Command | BadFrame]:
    """Return a maker of plain slot values that gives make the values dict decode would."""
    return lambda raws, raw: make(dict(zip(keys, raws, strict=True)), raw)


def _plain_reply(kind: str, keys: tuple[str, ...]) -> Callable[[tuple[int, ...], bytes], Reply]:
    """Return a maker of the reply `kind` from a plain frame's slot values."""
    return lambda raws, raw: Reply(kind, dict(zip(keys, raws, strict=True)))  # type: ignore[arg-type]


def _constant(command: Command) -> Callable[[Values, bytes], Command | BadFrame]:
    return lambda values, raw: command


def _fields(frame: Frame) -> list[Any]:
    if isinstance(frame, AsciiFrame):
        return list(frame.fields)
    return [slot.field for slot in frame.slots]

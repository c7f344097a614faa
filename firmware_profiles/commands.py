"""The semantic commands and replies a profile's frames carry, in device units (integers).

These plain values are the contract between the controller (which decides what to send),
the codec (which turns them into bytes and back) and the simulator (which obeys them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from protocols.errors import InputError


class ProfileError(InputError):
    """A firmware profile file is malformed or cannot be made safe."""


@dataclass(frozen=True, slots=True)
class SetZone:
    """Set one zone (index into the profile's zones) to an intensity level, optionally leased."""

    zone: int
    level: int
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class SetAll:
    """Set every zone's intensity level at once (one level per zone, profile order)."""

    levels: tuple[int, ...]
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class SetFrequency:
    """Set the vibration frequency, as the device's raw value (already mapped from Hz)."""

    value: int


@dataclass(frozen=True, slots=True)
class SetHeat:
    """Set the heat level (0 is off)."""

    level: int


@dataclass(frozen=True, slots=True)
class SetMode:
    """Select a built-in mode by its device number."""

    mode: int


Button = Literal["intensity_up", "intensity_down", "next_mode", "heat_toggle", "power"]


@dataclass(frozen=True, slots=True)
class Press:
    """Press a remote-control-style button once (non-idempotent)."""

    button: Button


@dataclass(frozen=True, slots=True)
class Stop:
    """Turn every output off at once."""


@dataclass(frozen=True, slots=True)
class Keepalive:
    """Tell the device's watchdog the controller is still here."""


@dataclass(frozen=True, slots=True)
class Query:
    """Ask the device for a status reply."""


Command = SetZone | SetAll | SetFrequency | SetHeat | SetMode | Press | Stop | Keepalive | Query

ReplyKind = Literal["ack", "nak", "status", "boot"]


@dataclass(frozen=True, slots=True)
class Reply:
    """A frame from the device: ack, nak, status or boot, with its decoded integer fields."""

    kind: ReplyKind
    fields: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BadFrame:
    """Bytes that could not be decoded (bad checksum, unknown frame); the parser resynchronised."""

    data: bytes
    reason: str

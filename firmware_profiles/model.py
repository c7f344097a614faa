"""The device profile model: identity, links, zones, outputs, limits and frames (pydantic)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Final, Literal

from pydantic import Field, field_validator

from firmware_profiles.frames import Frames, FrameSpec, Replies
from firmware_profiles.outputs import MAX_LEVEL, Frequency, FrozenModel, Heat, Intensity
from protocols.zones import expand_zones

if TYPE_CHECKING:
    from protocols.techniques import Technique

# Sanity bounds (the loader refuses anything beyond them, naming the key).
# A device that takes more than 1000 frames/s is no massage cushion, and 1/max_update_hz is
# the controller's pacing interval: inf would mean "no pacing at all".
MAX_UPDATE_HZ: Final = 1000.0
# A reply that takes longer than a minute is a dead link; an infinite time-out never notices.
MAX_REPLY_TIMEOUT_S: Final = 60.0
# Watchdog, keepalive, lease and auto-off: a day is beyond any session (40 min at most).
MAX_TIMER_S: Final = 24 * 3600.0
# Motor numbers index bits of a motor mask; a mask field is at most four bytes wide, and 256
# motors leave room for any cushion while keeping 1 << motor small.
MAX_MOTOR: Final = 255
MAX_BAUDRATE: Final = 10_000_000


class ProfileInfo(FrozenModel):
    """Who the cushion is and how it is driven."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Short id, e.g. lp4-ascii.")
    title: str
    vendor: str = ""
    model: str = ""
    control: Literal["absolute", "stepping"] = Field(
        "absolute", description="absolute: set levels; stepping: remote-style up/down presses."
    )


class SerialSettings(FrozenModel):
    """Serial link settings."""

    baudrate: int = Field(9600, gt=0, le=MAX_BAUDRATE)
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["none", "even", "odd", "mark", "space"] = "none"
    stopbits: float = Field(1, description="1, 1.5 or 2.")

    @field_validator("stopbits")
    @classmethod
    def _stopbits(cls, value: float) -> float:
        if value not in (1, 1.5, 2):
            raise ValueError("stopbits must be 1, 1.5 or 2")
        return value


class BleSettings(FrozenModel):
    """Bluetooth LE discovery and GATT characteristics."""

    name_patterns: tuple[str, ...] = Field((), description="fnmatch patterns of device names.")
    service_uuid: str
    write_uuid: str
    notify_uuid: str | None = None
    write_with_response: bool = False
    manufacturer_id: int | None = Field(None, ge=0, le=0xFFFF)


class Zone(FrozenModel):
    """A group of motors driven together, and the anatomical zones it covers."""

    id: str = Field(min_length=1)
    motors: tuple[Annotated[int, Field(ge=0, le=MAX_MOTOR)], ...] = Field(
        min_length=1, description="Motor numbers (0..255)."
    )
    covers: tuple[str, ...] = Field(min_length=1, description="Anatomical zones or groups.")
    kidney: bool = Field(False, description="Over the kidneys: the envelope caps it.")

    @field_validator("covers")
    @classmethod
    def _expand(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return expand_zones(value)


class Limits(FrozenModel):
    """Timing and rate limits of the device and the controller's obligations (finite, bounded).

    Cross-field rules (keepalive at most the update rate and below the watchdog, leases
    longer than the keepalive) are in `firmware_profiles.checks`.
    """

    max_update_hz: float = Field(gt=0, le=MAX_UPDATE_HZ,
                                 description="Most frames per second the device takes (<= 1000).")
    watchdog_s: float | None = Field(None, gt=0, le=MAX_TIMER_S,
                                     description="Device stops after this silence.")
    auto_off_s: float | None = Field(None, gt=0, le=MAX_TIMER_S,
                                     description="Device turns off after this long.")
    keepalive_s: float | None = Field(None, gt=0, le=MAX_TIMER_S,
                                      description="Controller keepalive interval.")
    lease_s: float | None = Field(None, gt=0, le=MAX_TIMER_S,
                                  description="Lease requested in leased commands.")
    reply_timeout_s: float = Field(0.5, gt=0, le=MAX_REPLY_TIMEOUT_S,
                                   description="Longest wait for a reply (<= 60 s).")
    ack_every_command: bool = Field(False, description="The device acks every valid command.")


class Profile(FrozenModel):
    """A cushion's wire protocol and limits, loaded from TOML; one profile drives both sides."""

    info: ProfileInfo = Field(alias="profile")
    serial: SerialSettings | None = None
    ble: BleSettings | None = None
    zones: tuple[Zone, ...] = Field(alias="zone", min_length=1)
    intensity: Intensity
    frequency: Frequency | None = None
    heat: Heat | None = None
    modes: dict[str, Annotated[int, Field(ge=0, le=MAX_LEVEL)]] = Field(
        default_factory=dict, description="Mode name -> number (0..65535)."
    )
    technique_modes: dict[str, str] = Field(
        default_factory=dict, description="Technique -> mode name."
    )
    limits: Limits
    frames: Frames
    replies: Replies = Field(default_factory=Replies)

    # Indexes built on first use. cached_property keeps them in the instance dict, a plain
    # lookup; pydantic private attributes cost microseconds per read (a failed attribute
    # lookup first), and supports() is called for every setpoint.
    @cached_property
    def _zone_index(self) -> dict[str, int]:
        return {zone.id: i for i, zone in enumerate(self.zones)}

    @cached_property
    def _frame_names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.frame_specs()) | frozenset(
            name for name, _ in self.reply_specs()
        )

    @property
    def name(self) -> str:
        """The profile's short id."""
        return self.info.name

    @property
    def control(self) -> Literal["absolute", "stepping"]:
        """absolute (levels are set) or stepping (remote-style presses)."""
        return self.info.control

    def zone_index(self, zone_id: str) -> int:
        """Return the index of a zone by id; KeyError if the profile has no such zone."""
        try:
            return self._zone_index[zone_id]
        except KeyError:
            known = ", ".join(self._zone_index)
            raise KeyError(f"profile '{self.name}' has no zone '{zone_id}' ({known})") from None

    def supports(self, frame_name: str) -> bool:
        """Return whether the profile has this frame, e.g. "set_all", "press.next_mode", "ack"."""
        return frame_name in self._frame_names

    def technique_mode(self, technique: Technique | str) -> int | None:
        """Return the device mode number that imitates a technique, or None."""
        mode = self.technique_modes.get(str(technique))
        return None if mode is None else self.modes.get(mode)

    def frame_specs(self) -> list[tuple[str, FrameSpec]]:
        """Return (frame name, spec) for every command frame present, press frames as press.X."""
        out: list[tuple[str, FrameSpec]] = []
        for name in ("set_zone", "set_all", "set_frequency", "set_heat", "set_mode"):
            spec = getattr(self.frames, name)
            if spec is not None:
                out.append((name, spec))
        out.extend((f"press.{button}", spec) for button, spec in self.frames.press.items())
        for name in ("stop", "keepalive", "query"):
            spec = getattr(self.frames, name)
            if spec is not None:
                out.append((name, spec))
        return out

    def reply_specs(self) -> list[tuple[str, FrameSpec]]:
        """Return (reply kind, spec) for every reply frame present."""
        return [
            (kind, spec)
            for kind in ("ack", "nak", "status", "boot")
            if (spec := getattr(self.replies, kind)) is not None
        ]

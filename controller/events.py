"""Session events: plain values the display, the --json stream, a journal or MQTT consume."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at session time `t_s` (seconds since the session started)."""

    t_s: float

    @property
    def kind(self) -> str:
        """Return the event's name as used in the JSON stream."""
        return _KIND[type(self)]

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict with a `kind` key."""
        data = asdict(self)
        data["kind"] = self.kind
        data["t_s"] = round(self.t_s, 4)
        return data


@dataclass(frozen=True, slots=True)
class SessionStarted(Event):
    """A session began: what runs, on what, how long, and each zone's cap."""

    program: str
    profile: str
    endpoint: str
    duration_s: float
    zones: tuple[str, ...]
    caps: tuple[float, ...]
    ramp_per_s: float
    levels_max: int
    notes: tuple[str, ...] = ()
    zone_names: tuple[str, ...] = ()  # the body area under each zone, in words
    cap_rules: tuple[str, ...] = ()  # the rule that sets each zone's cap ("kidney-zone cap")
    limits: dict[str, float] = field(default_factory=dict)  # the envelope's limits in force


@dataclass(frozen=True, slots=True)
class PhaseStarted(Event):
    """A program phase began."""

    name: str
    phase: str
    duration_s: float


@dataclass(frozen=True, slots=True)
class StepStarted(Event):
    """A program step (one technique, its repetitions) began."""

    technique: str
    phase: str
    repetitions: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class SetpointSent(Event):
    """New outputs went to the wire: device levels and their fraction of full scale."""

    levels: tuple[int, ...]
    intensity: tuple[float, ...]
    frequency_hz: float | None
    heat: int | None
    mode: str | None
    ceiling: float


@dataclass(frozen=True, slots=True)
class ClampApplied(Event):
    """A safety rule lowered what the program asked for."""

    zone: str
    rule: str
    wanted: float
    got: float
    layer: str = "plan"


@dataclass(frozen=True, slots=True)
class ScaleChanged(Event):
    """The user scaled the intensity: `factor` (0..1) of the planned output plays."""

    factor: float


@dataclass(frozen=True, slots=True)
class HeatSwitched(Event):
    """The user switched heat off (for the rest of the session) or back on to the plan's."""

    on: bool


@dataclass(frozen=True, slots=True)
class Paused(Event):
    """Outputs are off and the session waits to be resumed."""

    reason: str


@dataclass(frozen=True, slots=True)
class Resumed(Event):
    """The session continues, ramping up from zero."""


@dataclass(frozen=True, slots=True)
class Fault(Event):
    """The device or link misbehaved."""

    message: str


@dataclass(frozen=True, slots=True)
class LinkDown(Event):
    """The link to the cushion was lost; outputs count as off and the session pauses."""

    reason: str


@dataclass(frozen=True, slots=True)
class LinkUp(Event):
    """The link is back and the all-off frame went first; outputs ramp from zero on resume."""


@dataclass(frozen=True, slots=True)
class StopRequested(Event):
    """A stop was asked for; `emergency` skips the ramp-down."""

    reason: str
    emergency: bool


@dataclass(frozen=True, slots=True)
class AllOff(Event):
    """The all-outputs-off frame was written (or could not be), and what that means."""

    sent: bool  # the stop frame was written to the link
    reason: str
    confirmed: bool | None = None  # acknowledged by the cushion; None: it sends no acks
    fallback: str = ""  # when not sent: what the cushion itself will do, in plain words
    # Not off after all: what the cushion's status showed after the all-off (it ignored it).
    still_on: str = ""


@dataclass(frozen=True, slots=True)
class DeviceReset(Event):
    """The cushion restarted by itself (its state is not what was sent); outputs are off."""

    evidence: str


@dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    """The session is over; `outcome` is done, stopped, interrupted, device-error or safety."""

    outcome: str
    exit_code: int
    details: dict[str, Any] = field(default_factory=dict)


_KIND: dict[type, str] = {
    SessionStarted: "session_started",
    PhaseStarted: "phase",
    StepStarted: "step",
    SetpointSent: "setpoint",
    ClampApplied: "clamp",
    ScaleChanged: "scale",
    HeatSwitched: "heat_switched",
    Paused: "paused",
    Resumed: "resumed",
    Fault: "fault",
    LinkDown: "link_down",
    LinkUp: "link_up",
    StopRequested: "stop_requested",
    AllOff: "all_off",
    DeviceReset: "device_reset",
    SessionEnded: "session_ended",
}

Emit = Callable[[Event], None]


class Isolated:
    """Hands each event to consumers; one that raises is reported once and dropped.

    A display writing into a closed pipe or a full journal must never break the session,
    least of all its final all-off.
    """

    def __init__(self, *consumers: Emit) -> None:
        self.consumers = list(consumers)
        self.failures: list[str] = []

    def __call__(self, event: Event) -> None:
        for consumer in tuple(self.consumers):
            try:
                consumer(event)
            except Exception as exc:  # any consumer's failure, by design
                self.consumers.remove(consumer)
                note = f"{type(consumer).__name__} stopped taking events: {exc!r}"
                self.failures.append(note)
                logging.getLogger(__name__).warning("%s", note)

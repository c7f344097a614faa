"""MQTT topic names and payload models of a cushion node (docs/mqtt.md)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

PREFIX: Final = "cushion"
FLEET_STOP: Final = f"{PREFIX}/fleet/stop"
HA_STATUS: Final = "homeassistant/status"
# Node and cushion ids become topic levels and Home Assistant ids: no wildcards, no slashes.
ID_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def availability(node: str) -> str:
    """Return the node's retained `online` / `offline` topic (offline is its last will)."""
    return f"{PREFIX}/{node}/status"


def state(node: str, cushion: str) -> str:
    """Return a cushion's retained JSON state topic."""
    return f"{PREFIX}/{node}/{cushion}/state"


def events(node: str, cushion: str) -> str:
    """Return a cushion's event stream topic (one JSON event per message, not retained)."""
    return f"{PREFIX}/{node}/{cushion}/events"


def command(node: str, cushion: str) -> str:
    """Return the topic a cushion takes commands on."""
    return f"{PREFIX}/{node}/{cushion}/command"


def reply(node: str) -> str:
    """Return the node's reply topic, used when a command names no MQTT 5 response topic."""
    return f"{PREFIX}/{node}/reply"


def discovery(node: str, cushion: str) -> str:
    """Return the Home Assistant device-discovery topic of a cushion."""
    # <prefix>/<component>/<node_id>/<object_id>/config: the node id is a whole topic level,
    # so a broker ACL can give each node its own discovery topics (docs/mqtt.md, Security).
    return f"homeassistant/device/{node}/{cushion}/config"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class Start(_Payload):
    """Start a program; limits may only be lowered below the node's own."""

    command: Literal["start"]
    program: str | None = Field(None, description="program name; none: the selected one")
    max_intensity: float | None = Field(
        None, ge=0, le=1, description="lower the overall cap (fraction 0..1)"
    )
    sparing: bool = Field(False, description="run in sparing mode")


class Select(_Payload):
    """Choose the program a later `start` without a program runs."""

    command: Literal["select"]
    program: str


class Simple(_Payload):
    """Pause, resume, gentle stop (3 s ramp-down) or emergency stop (outputs off at once)."""

    command: Literal["pause", "resume", "stop", "emergency_stop"]


class Intensity(_Payload):
    """Scale the intensity: by `steps` tenths, or to `percent` of the plan (10..100)."""

    command: Literal["intensity"]
    steps: int | None = Field(None, ge=-10, le=10)
    percent: float | None = Field(None, ge=10, le=100)


class Heat(_Payload):
    """Switch heat off, or back on to what the program plays (never above its plan or caps)."""

    command: Literal["heat"]
    on: bool = Field(description="false: no heat from now on; true: the program's heat again")


Command = Annotated[Start | Select | Simple | Intensity | Heat, Field(discriminator="command")]


class Reply(_Payload):
    """The answer to one command: ok, or the error and the field it names."""

    ok: bool
    cushion: str | None
    command: str | None
    message: str
    field: str | None = None
    id: str | None = Field(None, description="the command's `id`, echoed (MQTT 3.1.1 brokers)")


class State(_Payload):
    """A cushion's retained state."""

    node: str
    cushion: str
    profile: str
    connected: bool = Field(description="a session has the cushion's link up")
    running: bool
    paused: bool
    program: str | None
    selected_program: str
    phase: str | None
    technique: str | None
    zones: list[str]
    intensity: list[float] = Field(description="per zone, fraction 0..1 of the device range")
    scale: float = Field(description="the user's scale, fraction of the plan")
    heat_on: bool = Field(True, description="the heat switch (on: the program's heat plays)")
    heat: float | None = Field(
        None, description="heat output now, fraction 0..1 of the top level; null: no heater"
    )
    remaining_s: float | None
    last_fault: str | None
    last_outcome: str | None
    screening: Literal["answered", "skipped", "due", "unknown"]
    max_intensity: float = Field(description="the node's overall cap (fraction 0..1)")


class FleetStop(_Payload):
    """Stop every cushion on every node at once (outputs off, no ramp)."""

    reason: str = "fleet stop"


def json_schemas() -> dict[str, dict[str, Any]]:
    """Return the JSON Schema of every payload, by name (docs/mqtt.md)."""
    from pydantic import TypeAdapter

    return {
        "command": TypeAdapter(Command).json_schema(),
        "reply": Reply.model_json_schema(),
        "state": State.model_json_schema(),
        "fleet_stop": FleetStop.model_json_schema(),
    }

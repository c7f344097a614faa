"""Home Assistant device-based MQTT discovery for a node's cushion (docs/mqtt.md)."""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from controller import mqtt_topics as topics

if TYPE_CHECKING:
    from controller.node_cushion import Slot


class HaDevice(BaseModel):
    """The device block: one per cushion."""

    model_config = ConfigDict(extra="forbid")

    identifiers: list[str] = Field(min_length=1)
    name: str
    manufacturer: str
    model: str
    sw_version: str
    via_device: str | None = None


class HaOrigin(BaseModel):
    """What published the discovery."""

    model_config = ConfigDict(extra="forbid")

    name: str
    sw_version: str
    support_url: str | None = None


class HaComponent(BaseModel):
    """One entity of the device (the keys Home Assistant's MQTT platforms take)."""

    model_config = ConfigDict(extra="allow")

    platform: Literal["select", "button", "number", "switch", "sensor", "binary_sensor"]
    unique_id: str
    name: str
    command_topic: str | None = None
    state_topic: str | None = None


class HaDeviceConfig(BaseModel):
    """The retained payload on `homeassistant/device/<node>/<cushion>/config`."""

    model_config = ConfigDict(extra="forbid")

    device: HaDevice
    origin: HaOrigin
    availability_topic: str
    payload_available: Literal["online"]
    payload_not_available: Literal["offline"]
    qos: int = Field(ge=0, le=2)
    components: dict[str, HaComponent] = Field(min_length=1)


def _cmd(command: str) -> str:
    return json.dumps({"command": command})


def device_config(node: str, slot: Slot) -> dict[str, Any]:
    """Return the discovery payload for `slot` (a `HaDeviceConfig`, as JSON-ready data)."""
    from protocols import builtin_programs
    from protocols.loader import user_programs

    base = f"cushion_{node}_{slot.name}"
    cmd = topics.command(node, slot.name)
    st = topics.state(node, slot.name)
    sw = version("cushion")

    def c(platform: str, key: str, name: str, **extra: Any) -> tuple[str, dict[str, Any]]:
        return key, {"platform": platform, "unique_id": f"{base}_{key}", "name": name, **extra}

    programs = sorted({*builtin_programs(), *user_programs()})
    components = dict([
        c("select", "program", "Program", command_topic=cmd, state_topic=st, options=programs,
          command_template='{"command": "select", "program": "{{ value }}"}',
          value_template="{{ value_json.selected_program }}"),
        c("button", "start", "Start", command_topic=cmd, payload_press=_cmd("start")),
        c("button", "pause", "Pause", command_topic=cmd, payload_press=_cmd("pause")),
        c("button", "resume", "Resume", command_topic=cmd, payload_press=_cmd("resume")),
        c("button", "stop", "Stop", command_topic=cmd, payload_press=_cmd("stop")),
        c("button", "emergency_stop", "Emergency stop", command_topic=cmd,
          payload_press=_cmd("emergency_stop")),
        # A share of the plan, which the node's limits already capped: 100 % is the cap.
        c("number", "intensity", "Intensity", command_topic=cmd, state_topic=st, min=10,
          max=100, step=10, mode="slider", unit_of_measurement="%",
          command_template='{"command": "intensity", "percent": {{ value }}}',
          value_template="{{ (value_json.scale * 100) | round(0) }}"),
        *([c("switch", "heat", "Heat", command_topic=cmd, state_topic=st,
             payload_on=json.dumps({"command": "heat", "on": True}),
             payload_off=json.dumps({"command": "heat", "on": False}),
             # Without state_on/off Home Assistant compares the state with payload_on.
             state_on="ON", state_off="OFF",
             value_template="{{ 'ON' if value_json.heat_on else 'OFF' }}")]
          if slot.profile.heat is not None else []),
        c("sensor", "phase", "Phase", state_topic=st, value_template="{{ value_json.phase }}"),
        c("sensor", "technique", "Technique", state_topic=st,
          value_template="{{ value_json.technique }}"),
        c("sensor", "remaining", "Remaining", state_topic=st, device_class="duration",
          unit_of_measurement="s", value_template="{{ value_json.remaining_s }}"),
        c("binary_sensor", "connected", "Connected", state_topic=st,
          device_class="connectivity",
          value_template="{{ 'ON' if value_json.connected else 'OFF' }}"),
    ])
    payload = HaDeviceConfig(
        device=HaDevice(identifiers=[base], name=f"Cushion {slot.name}", manufacturer="Cushion",
                        model=slot.profile.info.title, sw_version=sw),
        origin=HaOrigin(name="cushion", sw_version=sw),
        availability_topic=topics.availability(node),
        payload_available="online", payload_not_available="offline", qos=1,
        components={k: HaComponent.model_validate(v) for k, v in components.items()},
    )
    return payload.model_dump(mode="json", exclude_none=True)

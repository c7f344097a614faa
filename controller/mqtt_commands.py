"""Remote commands: validate a payload, then act on one cushion within the node's rules."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from controller.mqtt_topics import Command, FleetStop, Heat, Intensity, Select, Simple, Start
from protocols.errors import InputError

if TYPE_CHECKING:
    from controller.node_cushion import Slot

_COMMAND: TypeAdapter[Command] = TypeAdapter(Command)


class CommandError(InputError):
    """A remote command that is malformed, over a limit, or not possible now; changes nothing."""


def parse_command(payload: bytes) -> tuple[Command, str | None]:
    """Return the command in `payload` and its optional `id`; CommandError naming the field."""
    try:
        data: Any = json.loads(payload or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError("the payload is not JSON.", hint='Send e.g. {"command": "pause"}.') \
            from exc
    if not isinstance(data, dict):
        raise CommandError("the payload is not a JSON object.",
                           hint='Send e.g. {"command": "pause"}.')
    ident = data.pop("id", None)
    if ident is not None and not isinstance(ident, str):
        raise CommandError("id must be a string.", key="id")
    try:
        return _COMMAND.validate_python(data), ident
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"] if str(p) not in
               ("start", "select", "pause", "resume", "stop", "emergency_stop", "intensity",
                "heat")]
        key = ".".join(loc) or "command"
        msg = first["msg"]
        if first["type"] == "finite_number":
            msg = "must be a finite number, not inf or nan"
        raise CommandError(f"{key}: {msg}.", key=key,
                           hint="See docs/mqtt.md for the command payloads.") from exc


def parse_fleet_stop(payload: bytes) -> FleetStop:
    """Return the fleet stop in `payload` (an empty payload is a plain fleet stop)."""
    if not payload.strip():
        return FleetStop()
    try:
        return FleetStop.model_validate_json(payload)
    except ValidationError:
        # A fleet stop is never refused for its wording: stopping is always allowed.
        return FleetStop()


async def dispatch(slot: Slot, cmd: Command) -> str:
    """Carry out `cmd` on `slot`'s cushion; return what happened, or raise CommandError."""
    if isinstance(cmd, Start):
        return await slot.start(cmd)
    if isinstance(cmd, Select):
        return slot.select(cmd.program)
    if isinstance(cmd, Heat):
        return slot.switch_heat(cmd.on)
    session = slot.session
    if session is None:
        raise CommandError(f"no session is running on '{slot.name}': nothing to {cmd.command}.",
                           key="command", hint='Start one with {"command": "start"}.')
    if isinstance(cmd, Simple):
        if cmd.command == "pause":
            session.pause("paused remotely")
            return "paused"
        if cmd.command == "resume":
            session.resume()  # ramps up from zero again, like every resume
            return "resumed"
        if cmd.command == "stop":
            session.stop("stopped remotely")
            return "stopping (ramping down)"
        await session.emergency_stop("emergency stop (remote)")
        return "outputs off"
    assert isinstance(cmd, Intensity)
    if (cmd.steps is None) == (cmd.percent is None):
        raise CommandError("intensity needs exactly one of steps or percent.", key="steps",
                           hint='Send {"command": "intensity", "steps": -1} or "percent": 50.')
    steps = cmd.steps if cmd.steps is not None else round(
        (cmd.percent or 0) / 10 - session.scale * 10
    )
    # The scale never goes above the plan, which the envelope already capped; higher
    # still climbs under the device's ramp ceiling.
    return f"scale {session.scale_by(steps):g}"

"""One cushion of a node: its session, its retained state, and the remote start's rules."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controller import mqtt_topics as topics
from controller.events import (
    Fault,
    LinkDown,
    LinkUp,
    Paused,
    PhaseStarted,
    Resumed,
    SessionEnded,
    SessionStarted,
    SetpointSent,
    StepStarted,
)
from controller.mqtt_commands import CommandError
from protocols.errors import InputError

if TYPE_CHECKING:
    from controller.events import Event
    from controller.limits import SafetyLimits
    from controller.mqtt_topics import Start
    from controller.node import Node
    from controller.session import Session
    from controller.transports.base import Endpoint
    from firmware_profiles import Profile
    from hil.cushion import SimulatedCushion

log = logging.getLogger(__name__)

START_REPLY_TIMEOUT_S = 30.0  # a start answers once the device is open, or says "starting"


@dataclass(frozen=True)
class CushionSpec:
    """One cushion a node owns: its id on the broker, where it is, what it speaks."""

    name: str
    endpoint: Endpoint
    profile: Profile


class Slot:
    """One cushion of a node: its session (if any), its state, and how to start one."""

    def __init__(self, node: Node, spec: CushionSpec) -> None:
        self.node = node
        self.name = spec.name
        self.endpoint = spec.endpoint
        self.profile = spec.profile
        self.sim: SimulatedCushion | None = None
        if spec.endpoint.scheme == "sim":
            from hil.cushion import SimulatedCushion

            # One simulated cushion for the node's life, so tests can read its recorder.
            self.sim = SimulatedCushion(spec.profile)
        self.session: Session | None = None
        self.task: asyncio.Task[None] | None = None
        self.selected = _default_program()
        self.program: str | None = None
        self.phase: str | None = None
        self.technique: str | None = None
        self.connected = False
        self.paused = False
        self.intensity: list[float] = [0.0] * len(spec.profile.zones)
        self.heat_on = True  # the heat switch, kept across sessions
        self.heat_level = 0
        self.zones = [z.id for z in spec.profile.zones]
        self.last_fault: str | None = None
        self.last_outcome: str | None = None
        self.screening = node.screening_status()
        self._started: asyncio.Future[None] | None = None
        self._refusal: InputError | None = None

    # -- state --------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Take a session event: update the state, queue it for the event stream."""
        if isinstance(event, SessionStarted):
            self.program, self.connected, self.paused = event.program, True, False
            self.zones = list(event.zones)
            if self._started is not None and not self._started.done():
                self._started.set_result(None)
        elif isinstance(event, PhaseStarted):
            self.phase = event.name
        elif isinstance(event, StepStarted):
            self.technique = event.technique
        elif isinstance(event, SetpointSent):
            self.intensity = [round(v, 4) for v in event.intensity]
            self.heat_level = event.heat or 0
        elif isinstance(event, Paused):
            self.paused = True
        elif isinstance(event, Resumed):
            self.paused = False
        elif isinstance(event, Fault):
            self.last_fault = event.message
        elif isinstance(event, LinkDown):
            self.connected, self.last_fault = False, event.reason
        elif isinstance(event, LinkUp):
            self.connected = True
        elif isinstance(event, SessionEnded):
            self.last_outcome = event.outcome
            if event.outcome in ("device-error", "safety"):
                self.last_fault = str(event.details.get("message", event.outcome))
        self.node.mark(self)
        if not isinstance(event, SetpointSent):  # the state carries the outputs
            self.node.queue_event(self, event.to_json())

    def state(self) -> dict[str, Any]:
        """Return the retained state payload (a `State`)."""
        session = self.session
        remaining = None
        if session is not None:
            remaining = round(max(0.0, session.timeline.duration_s - session.position_s), 1)
        running = self.task is not None and not self.task.done()
        return topics.State(
            node=self.node.node_id, cushion=self.name, profile=self.profile.name,
            connected=self.connected and running, running=running,
            paused=self.paused and running, program=self.program if running else None,
            selected_program=self.selected, phase=self.phase if running else None,
            technique=self.technique if running else None, zones=self.zones,
            intensity=self.intensity if running else [0.0] * len(self.intensity),
            scale=session.scale if session is not None else 1.0, heat_on=self.heat_on,
            heat=self._heat_now(running), remaining_s=remaining,
            last_fault=self.last_fault, last_outcome=self.last_outcome,
            screening=self.screening, max_intensity=self.node.limits.max_intensity,
        ).model_dump(mode="json")

    def _heat_now(self, running: bool) -> float | None:
        heater = self.profile.heat
        if heater is None:
            return None
        return round(self.heat_level / heater.levels, 4) if running else 0.0

    # -- commands -----------------------------------------------------------------------

    def switch_heat(self, on: bool) -> str:
        """Set the heat switch for this and later sessions; on never passes a heat rule."""
        from controller.screening import no_heat, no_heat_note

        if on and self.profile.heat is None:
            raise CommandError(f"'{self.name}' has no heater.", key="on",
                               hint="Only cushions whose profile has [heat] can heat.")
        if on and not self.node.skip_screening and no_heat(self.node.screening().section):
            raise CommandError(
                f"{no_heat_note()}.", key="on",
                hint="A doctor decides; the answer is changed with 'cushion screening'.")
        self.heat_on = on
        session = self.session
        if session is not None:
            session.set_heat(on)
        self.node.mark(self)
        if not on:
            return "heat off"
        if session is not None and not any(sp.heat for sp in session.timeline.setpoints):
            return "heat on (the running program plays no heat)"
        return "heat on"


    def select(self, program: str) -> str:
        """Choose the program a later plain start runs."""
        from protocols import load_program

        try:
            load_program(program)
        except InputError as exc:
            raise CommandError(exc.describe(), key="program") from exc
        self.selected = program
        self.node.mark(self)
        return f"selected {program}"

    async def start(self, cmd: Start) -> str:
        """Start a program under the home-user rules; return once it runs, or refuse."""
        from controller.limits import narrow
        from controller.runner import RunOptions
        from controller.screening import gate
        from protocols import load_program

        if self.task is not None and not self.task.done():
            raise CommandError(f"a session is already running on '{self.name}'.",
                               key="command", hint="Stop it first.")
        name = cmd.program or self.selected
        try:
            prog = load_program(name)
        except InputError as exc:
            raise CommandError(exc.describe(), key="program") from exc
        limits = self.node.limits
        changes: dict[str, Any] = {}
        if cmd.max_intensity is not None:
            if cmd.max_intensity > limits.max_intensity:
                raise CommandError(
                    f"max_intensity {cmd.max_intensity:g} is above this node's limit "
                    f"{limits.max_intensity:g}; a remote command can only lower a limit.",
                    key="max_intensity", hint=f"Give at most {limits.max_intensity:g}.")
            changes["max_intensity"] = cmd.max_intensity
        if cmd.sparing:
            changes["sparing"] = True
        if changes:
            limits = narrow(limits, changes)
        # The same gate as a local run without a terminal: nothing can be asked here.
        screened = gate(prog, self.node.screening(), limits, skip=self.node.skip_screening,
                        asker=None)
        for note in screened.notes:
            log.info("%s: %s", self.name, note)
        transport = None
        if self.sim is not None:
            from controller.transports.sim import SimTransport

            transport = SimTransport(self.endpoint, self.profile, self.sim)
        options = RunOptions(self.endpoint, None, handle_signals=False,
                             on_session=self._got_session, plan_in_thread=True)
        loop = asyncio.get_running_loop()
        self._started = started = loop.create_future()
        self._refusal = None
        self.phase = self.technique = None
        self.task = self.node.spawn(
            self._run(prog, screened.limits, options, transport, screened.skipped),
            name=f"cushion-session-{self.name}",
        )
        await asyncio.wait({started, self.task}, timeout=START_REPLY_TIMEOUT_S,
                           return_when=asyncio.FIRST_COMPLETED)
        if started.done():
            return f"started {prog.name}"
        if self.task.done():
            refusal = self._refusal
            if refusal is not None:
                raise CommandError(refusal.describe(), key=refusal.key or "program")
            raise CommandError(f"the session on '{self.name}' ended before it began: "
                               f"{self.last_fault or self.last_outcome}.", key="command")
        return f"starting {prog.name}"

    def _got_session(self, session: Session) -> None:
        self.session = session
        session.set_heat(self.heat_on)

    async def _run(self, prog: Any, limits: SafetyLimits, options: Any, transport: Any,
                   skipped: bool) -> None:
        from controller.errors import DeviceError
        from controller.journaled import run_journaled

        try:
            result = await run_journaled(prog, self.profile, limits, options, self.on_event,
                                         say=_log_say, transport=transport,
                                         screening_skipped=skipped)
            log.info("%s: %s (%s)", self.name, result.outcome, result.message)
        except InputError as exc:  # refused (a daily limit): the start's reply says why
            self._refusal = exc
            log.info("%s: refused: %s", self.name, exc.describe())
        except DeviceError as exc:
            self.last_fault, self.last_outcome = str(exc), "device-error"
            log.warning("%s: %s", self.name, exc)
        except Exception:  # a session's failure must never take the node down
            self.last_outcome = "error"
            log.exception("%s: the session failed", self.name)
        finally:
            self.session = None
            self.connected = False
            self.node.mark(self)


def _default_program() -> str:
    from protocols import builtin_programs

    names = sorted(builtin_programs())
    return "lumbar-classic" if "lumbar-classic" in names else names[0]


def _log_say(text: str, *, warning: bool = False) -> None:
    (log.warning if warning else log.info)("%s", text)

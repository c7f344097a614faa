"""A long-lived MQTT node: owns cushions, publishes their state and takes remote commands.

One TaskGroup owns the broker loop (connect, subscribe, publish, reconnect with capped
jittered back-off) and one task per running session. Sessions never wait on the broker:
events land in a bounded outbox and the state is latest-value-wins, so an outage never
interrupts, pauses or speeds up a session (docs/mqtt.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import signal
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller import mqtt_topics as topics
from controller.backoff import backoff_delay
from controller.errors import UsageError
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
from controller.mqtt_commands import CommandError, dispatch, parse_command, parse_fleet_stop
from controller.mqtt_topics import Reply, Start
from protocols.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

    from controller.config import Config
    from controller.events import Event
    from controller.limits import SafetyLimits
    from controller.session import Session
    from controller.transports.base import Endpoint
    from firmware_profiles import Profile
    from hil.cushion import SimulatedCushion

log = logging.getLogger(__name__)

START_REPLY_TIMEOUT_S = 30.0  # a start answers once the device is open, or says "starting"
STATE_MIN_INTERVAL_S = 0.2  # state is latest-value-wins, at most 5 messages a second
STATE_EVERY_S = 1.0  # a running session's remaining time, once a second
EVENT_BACKLOG = 1000  # events kept while the broker is away; the oldest go first
SHUTDOWN_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class MqttSettings:
    """Where the broker is and how to log in; the password is never shown."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    protocol: str = "5"
    tls: aiomqtt.TLSParameters | None = None
    keepalive: int = 15

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str, *, password: str | None = None,
                   tls: aiomqtt.TLSParameters | None = None) -> MqttSettings:
    """Parse `mqtt://[user@]host[:port][?protocol=3.1.1]`; UsageError naming --mqtt."""
    hint = "Write it as mqtt://[user@]host[:port], e.g. mqtt://localhost:1883."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"--mqtt {url}: {exc}.", key="--mqtt", hint=hint) from exc
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise UsageError(f"--mqtt {url} is not an MQTT broker URL.", key="--mqtt", hint=hint)
    if parts.password is not None:
        raise UsageError("--mqtt must not carry a password (it would show in process lists).",
                         key="--mqtt", hint="Use --password-file or CUSHION_MQTT_PASSWORD.")
    query = dict(parse_qsl(parts.query))
    protocol = query.pop("protocol", "5")
    if protocol not in ("5", "3.1.1") or query:
        raise UsageError(f"--mqtt {url}: unknown option.", key="--mqtt",
                         hint="The one option is protocol=5 (the default) or protocol=3.1.1.")
    if parts.scheme == "mqtts" and tls is None:
        tls = aiomqtt.TLSParameters()
    return MqttSettings(
        parts.hostname, port or (8883 if tls else 1883),
        unquote(parts.username) if parts.username else None, password, protocol, tls,
    )


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
            scale=session.scale if session is not None else 1.0, remaining_s=remaining,
            last_fault=self.last_fault, last_outcome=self.last_outcome,
            screening=self.screening, max_intensity=self.node.limits.max_intensity,
        ).model_dump(mode="json")

    # -- commands -----------------------------------------------------------------------

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
                             on_session=self._got_session)
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


class Node:
    """Cushions on one host, joined to one broker; `run()` until stopped."""

    def __init__(
        self,
        mqtt: MqttSettings,
        cushions: list[CushionSpec],
        *,
        node_id: str,
        limits: SafetyLimits,
        config_path: Path | None = None,
        config: Config | None = None,
        skip_screening: bool = False,
        handle_signals: bool = True,
    ) -> None:
        self.mqtt = mqtt
        self.node_id = node_id
        self.limits = limits
        self.config_path = config_path
        self._config = config
        self.skip_screening = skip_screening
        self.handle_signals = handle_signals
        self.slots: dict[str, Slot] = {}
        self._dirty: set[str] = set()
        self._events: deque[tuple[str, str]] = deque(maxlen=EVENT_BACKLOG)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stop_reason = "node stopping"
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.client: aiomqtt.Client | None = None
        self.online = asyncio.Event()  # set while connected to the broker
        self.connects = 0  # successful connections so far (a reconnect makes it 2)
        for spec in cushions:
            self.slots[spec.name] = Slot(self, spec)

    # -- rules --------------------------------------------------------------------------

    def screening(self) -> Any:
        """Return the screening in force (re-read: answers may change between sessions)."""
        from controller.config import load_config
        from controller.screening import screening_for

        cfg = self._config if self._config is not None else load_config(self.config_path)[0]
        return screening_for(self.config_path, cfg)

    def screening_status(self) -> str:
        """Return `skipped`, `answered` or `due` for the state payload."""
        from controller.screening import to_ask

        if self.skip_screening:
            return "skipped"
        try:
            section = self.screening().section
        except InputError:
            return "unknown"
        if section.unattended:
            return "skipped"
        return "due" if to_ask(section, (), dt.date.today()) else "answered"

    # -- the outbox (never blocks a session) ------------------------------------------------

    def mark(self, slot: Slot) -> None:
        """Note that `slot`'s state changed."""
        self._dirty.add(slot.name)
        self._wake.set()

    def queue_event(self, slot: Slot, data: dict[str, Any]) -> None:
        """Queue one event for the event stream (dropped oldest-first while offline)."""
        self._events.append((topics.events(self.node_id, slot.name), json.dumps(data)))
        self._wake.set()

    def spawn(self, coro: Any, *, name: str) -> asyncio.Task[Any]:
        """Run `coro` as a named task of the node's TaskGroup."""
        assert self._tg is not None, "the node is not running"
        return self._tg.create_task(coro, name=name)

    # -- life ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until `request_stop` (or SIGINT/SIGTERM); every cushion ends all-off."""
        from controller.keys import STDIN

        STDIN.set(False)  # a node reads no keys; its sessions' tasks inherit this
        loop = asyncio.get_running_loop()
        installed = []
        if self.handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_stop, f"node stopping ({sig.name})")
                installed.append(sig)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                broker = tg.create_task(self._broker_loop(), name="cushion-mqtt")
                await self._stop.wait()
                await self.stop_all(self._stop_reason)
                await self._say_offline()
                broker.cancel()
        finally:
            self._tg = None
            for sig in installed:
                loop.remove_signal_handler(sig)

    def request_stop(self, reason: str = "node stopping") -> None:
        """Ask the node to stop every cushion and exit."""
        self._stop_reason = reason
        self._stop.set()

    async def stop_all(self, reason: str) -> None:
        """Cut every cushion's outputs at once and wait for their sessions to end."""
        waiting = []
        for slot in self.slots.values():
            if slot.task is None or slot.task.done():
                continue
            if slot.session is not None:
                await slot.session.emergency_stop(reason)
            else:
                slot.task.cancel()  # still opening: it unwinds, closing the device all-off
            waiting.append(slot.task)
        if waiting:
            await asyncio.wait(waiting, timeout=SHUTDOWN_TIMEOUT_S)

    async def remove_cushion(self, name: str) -> None:
        """Stop one cushion and take it off the broker (empty retained discovery and state)."""
        slot = self.slots[name]
        if slot.task is not None and not slot.task.done():
            if slot.session is not None:
                await slot.session.emergency_stop("cushion removed")
            else:
                slot.task.cancel()
            await asyncio.wait([slot.task], timeout=SHUTDOWN_TIMEOUT_S)
        del self.slots[name]
        self._dirty.discard(name)
        client = self.client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(topics.discovery(self.node_id, name), b"", qos=1,
                                     retain=True)
                await client.publish(topics.state(self.node_id, name), b"", qos=1, retain=True)

    async def _say_offline(self) -> None:
        client = self.client
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            for name in self.slots:
                await client.publish(topics.state(self.node_id, name),
                                     json.dumps(self.slots[name].state()), qos=1, retain=True,
                                     timeout=5)
            # A clean disconnect sends no last will: say offline ourselves.
            await client.publish(topics.availability(self.node_id), "offline", qos=1,
                                 retain=True, timeout=5)

    # -- the broker ---------------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        m = self.mqtt
        return aiomqtt.Client(
            m.host, m.port, username=m.username, password=m.password,
            identifier=f"cushion-{self.node_id}",
            protocol=aiomqtt.ProtocolVersion.V5 if m.protocol == "5"
            else aiomqtt.ProtocolVersion.V311,
            will=aiomqtt.Will(topics.availability(self.node_id), "offline", qos=1, retain=True),
            keepalive=m.keepalive, timeout=10, tls_params=m.tls, logger=log,
        )

    async def _broker_loop(self) -> None:
        attempt = 0
        while True:
            try:
                async with self._client() as client:
                    attempt = 0
                    self.client = client
                    await self._connected(client)
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._publisher(client), name="cushion-mqtt-publish")
                        async for message in client.messages:
                            tg.create_task(self._on_message(client, message),
                                           name="cushion-mqtt-message")
            except* aiomqtt.MqttError as group:
                log.warning("broker %s: %s; reconnecting", self.mqtt, group.exceptions[0])
            finally:
                self.client = None
                self.online.clear()
            attempt += 1
            await asyncio.sleep(backoff_delay(attempt))

    async def _connected(self, client: aiomqtt.Client) -> None:
        node = self.node_id
        await client.subscribe(f"{topics.PREFIX}/{node}/+/command", qos=1)
        await client.subscribe(topics.FLEET_STOP, qos=1)
        await client.subscribe(topics.HA_STATUS, qos=1)
        await self._publish_discovery(client)
        for name, slot in list(self.slots.items()):
            await client.publish(topics.state(node, name), json.dumps(slot.state()), qos=1,
                                 retain=True)
        await client.publish(topics.availability(node), "online", qos=1, retain=True)
        self.connects += 1
        self.online.set()
        log.info("connected to %s as node %s", self.mqtt, node)

    async def _publish_discovery(self, client: aiomqtt.Client) -> None:
        from controller.mqtt_discovery import device_config

        for name, slot in list(self.slots.items()):
            payload = device_config(self.node_id, slot)
            await client.publish(topics.discovery(self.node_id, name), json.dumps(payload),
                                 qos=1, retain=True)

    async def _publisher(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        last_full = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATE_EVERY_S):
                    await self._wake.wait()
            self._wake.clear()
            while self._events:
                topic, data = self._events[0]
                await client.publish(topic, data, qos=0)
                self._events.popleft()  # only once it went out
            now = loop.time()
            if now - last_full >= STATE_EVERY_S:
                last_full = now
                self._dirty.update(n for n, s in self.slots.items() if s.session is not None)
            dirty, self._dirty = self._dirty, set()
            for name in dirty:
                slot = self.slots.get(name)
                if slot is not None:
                    await client.publish(topics.state(self.node_id, name),
                                         json.dumps(slot.state()), qos=1, retain=True)
            await asyncio.sleep(STATE_MIN_INTERVAL_S)

    async def _on_message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        payload = message.payload if isinstance(message.payload, bytes) else str(
            message.payload or "").encode()
        if message.topic.matches(topics.FLEET_STOP):
            why = parse_fleet_stop(payload).reason
            log.warning("fleet stop: %s", why)
            for slot in list(self.slots.values()):
                if slot.session is not None:
                    await slot.session.emergency_stop(f"fleet stop: {why}")
                elif slot.task is not None and not slot.task.done():
                    slot.task.cancel()
            return
        if message.topic.matches(topics.HA_STATUS):
            if payload.strip() == b"online":
                await self._publish_discovery(client)
            return
        name = topic.split("/")[2]
        target = self.slots.get(name)
        ident: str | None = None
        command: str | None = None
        try:
            if target is None:
                raise CommandError(f"this node has no cushion '{name}'.", key="cushion",
                                   hint=f"Its cushions: {', '.join(self.slots)}.")
            cmd, ident = parse_command(payload)
            command = cmd.command
            text = await dispatch(target, cmd)
            reply = Reply(ok=True, cushion=name, command=command, message=text, id=ident)
        except InputError as exc:
            # Bad, over-limit or refused: nothing changed; say why on the reply topic.
            reply = Reply(ok=False, cushion=name, command=command, message=exc.describe(),
                          field=exc.key, id=ident)
        await self._reply(client, message, reply)

    async def _reply(self, client: aiomqtt.Client, message: aiomqtt.Message,
                     reply: Reply) -> None:
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
        data = reply.model_dump_json(exclude_none=False)
        if response_topic:
            out = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            correlation = getattr(props, "CorrelationData", None)
            if correlation is not None:
                out.CorrelationData = correlation
            await client.publish(response_topic, data, qos=1, properties=out)
        else:
            await client.publish(topics.reply(self.node_id), data, qos=1)


def _cushion_specs(devices: tuple[str, ...], port: str | None,
                   profile_name: str | None) -> list[CushionSpec]:
    """Turn --device monikers (and --port/--profile) into cushion specs with unique ids."""
    from controller.transports.base import Endpoint, parse_endpoint
    from firmware_profiles import load_profile

    wanted: list[tuple[Endpoint, str, str | None]] = []
    for text in devices:
        ep = parse_endpoint(text)
        opts = dict(ep.options)
        name = opts.pop("name", None)
        if ep.scheme == "sim":
            wanted.append((Endpoint("sim", ep.address), ep.address, name))
        else:
            prof = opts.pop("profile", None)
            if prof is None:
                raise UsageError(f"--device {text} needs its profile.", key="--device",
                                 hint=f"Write it as {ep.scheme}:{ep.address}?profile=NAME.")
            wanted.append((Endpoint(ep.scheme, ep.address, opts), prof, name))
    if port is not None:
        if profile_name is None:
            raise UsageError("--port needs --profile.", key="--profile",
                             hint="Add --profile NAME (see 'cushion profiles').")
        wanted.append((parse_endpoint(port), profile_name, None))
    if not wanted:
        raise UsageError("serve needs at least one cushion.", key="--device",
                         hint="Add --device sim:lp4-ascii, or --port DEV --profile NAME.")
    specs: list[CushionSpec] = []
    for endpoint, prof, name in wanted:
        base = name or prof
        cid = base.lower()
        n = 2
        while any(s.name == cid for s in specs):
            cid, n = f"{base.lower()}-{n}", n + 1
        if not topics.ID_PATTERN.match(cid):
            raise UsageError(f"cushion id '{cid}' cannot be a topic level.", key="--device",
                             hint="Give ?name= with lower-case letters, digits, - and _.")
        specs.append(CushionSpec(cid, endpoint, load_profile(prof)))
    return specs


def _password(password_file: Path | None) -> str | None:
    import os

    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--password-file {password_file}: {exc.strerror}.",
                             key="--password-file",
                             hint="Give a readable file holding only the password.") from exc
    return os.environ.get("CUSHION_MQTT_PASSWORD") or None


def serve_main(
    mqtt_url: str, devices: tuple[str, ...], *, port: str | None, profile_name: str | None,
    node_id: str | None, password_file: Path | None,
    tls: tuple[Path | None, Path | None, Path | None], config_path: Path | None, cfg: Config,
    limits: SafetyLimits, skip_screening: bool,
) -> int:
    """Run `cushion serve` until SIGINT/SIGTERM; return the exit code."""
    import socket

    from controller.clock import loop_factory

    ca, cert, key = tls
    for option, path in (("--tls-ca", ca), ("--tls-cert", cert), ("--tls-key", key)):
        if path is not None and not path.is_file():
            raise UsageError(f"{option} {path} is not a file.", key=option,
                             hint="Give the path of a PEM file.")
    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together.", key="--tls-key",
                         hint="Give both, or neither.")
    params = None
    if ca or cert:
        params = aiomqtt.TLSParameters(ca_certs=str(ca) if ca else None,
                                       certfile=str(cert) if cert else None,
                                       keyfile=str(key) if key else None)
    settings = parse_mqtt_url(mqtt_url, password=_password(password_file), tls=params)
    nid = (node_id or socket.gethostname().split(".")[0]).lower()
    if not topics.ID_PATTERN.match(nid):
        raise UsageError(f"--node-id {nid} cannot be a topic level.", key="--node-id",
                         hint="Use lower-case letters, digits, - and _ (at most 63).")
    specs = _cushion_specs(devices, port, profile_name)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    log.info("node %s: %s on %s", nid, ", ".join(s.name for s in specs), settings)

    async def go() -> None:
        node = Node(settings, specs, node_id=nid, limits=limits, config_path=config_path,
                    config=cfg, skip_screening=skip_screening)
        await node.run()

    with asyncio.Runner(loop_factory=loop_factory(None)) as runner:
        runner.run(go())
    return 0

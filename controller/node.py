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
from typing import TYPE_CHECKING, Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller import mqtt_topics as topics
from controller.backoff import backoff_delay
from controller.mqtt_commands import CommandError, dispatch, parse_command, parse_fleet_stop
from controller.mqtt_settings import no_delay
from controller.mqtt_topics import Reply
from controller.node_cushion import Slot
from controller.session import EXIT_INTERRUPTED
from protocols.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

    from controller.config import Config
    from controller.keys import Keyboard
    from controller.limits import SafetyLimits
    from controller.mqtt_settings import MqttSettings
    from controller.node_cushion import CushionSpec

log = logging.getLogger(__name__)

STATE_MIN_INTERVAL_S = 0.2  # state is latest-value-wins, at most 5 messages a second
STATE_EVERY_S = 1.0  # a running session's remaining time, once a second
EVENT_BACKLOG = 1000  # events kept while the broker is away; the oldest go first
SHUTDOWN_TIMEOUT_S = 15.0


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
        keyboard: Keyboard | None = None,
    ) -> None:
        self.mqtt = mqtt
        self.node_id = node_id
        self.limits = limits
        self.config_path = config_path
        self._config = config
        self.skip_screening = skip_screening
        self.handle_signals = handle_signals
        self.keyboard = keyboard
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
            with contextlib.ExitStack() as stack:
                if self.keyboard is not None:
                    from controller.node_keys import FOOTER, AllCushions

                    stack.enter_context(self.keyboard.bind(AllCushions(self)))
                    log.info("%s", FOOTER)
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

    async def cut_all(self, reason: str, *, exit_code: int = EXIT_INTERRUPTED
                      ) -> list[asyncio.Task[None]]:
        """Cut every cushion's outputs at once; return the session tasks still ending."""
        tasks = [s.task for s in self.slots.values() if s.task is not None and not s.task.done()]
        stops = []
        for slot in list(self.slots.values()):
            if slot.session is not None:
                stops.append(slot.session.emergency_stop(reason, exit_code=exit_code))
            elif slot.task is not None and not slot.task.done():
                slot.task.cancel()  # still opening: it unwinds, closing the device all-off
        # All at once: one cushion's slow stop write must not hold up the next one's.
        await asyncio.gather(*stops)
        return tasks

    async def stop_all(self, reason: str) -> None:
        """Cut every cushion's outputs at once and wait for their sessions to end."""
        waiting = await self.cut_all(reason)
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
        no_delay(client)
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
            await self.cut_all(f"fleet stop: {why}")
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


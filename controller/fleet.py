"""`cushion fleet`: every node and cushion on a broker, live, with a stop-all key (docs/mqtt.md).

One aiomqtt client subscribes to the nodes' availability, retained states and events and
feeds a `FleetModel`; the broker going away mid-view is said on screen and retried with the
node's capped jittered back-off. The fleet stop is one capital `S`, no confirmation:
stopping is always safe, and a stop that waits for a second key is a slower stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any, Final, TextIO

import aiomqtt

from controller import mqtt_topics as topics
from controller.backoff import backoff_delay
from controller.errors import UsageError
from controller.fleet_model import FleetModel, Line
from controller.fleet_view import STOP_KEY, plain_line, render, table, title
from controller.mqtt_settings import (
    MqttSettings,
    no_delay,
    parse_mqtt_url,
    read_password,
    tls_parameters,
)
from controller.mqtt_topics import FleetStop
from protocols.errors import CushionError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

log = logging.getLogger(__name__)

EXIT_OK: Final = 0
# The broker could not be reached: the link failed, as a cushion's does (exit 3). `cushion
# serve` never gives up (a node must come back by itself); a viewer that cannot see
# anything says so at once.
EXIT_BROKER: Final = 3
SETTLE_QUIET_S: Final = 0.5  # the snapshot is whole once no new retained topic came this long
SETTLE_MAX_S: Final = 5.0
STOP_TIMEOUT_S: Final = 5.0  # the broker's acknowledgement of the fleet stop (QoS 1)
REFRESH_MIN_S: Final = 0.1  # redraw at most 10 times a second, however busy the broker
SUBSCRIPTIONS: Final = (f"{topics.PREFIX}/+/status", f"{topics.PREFIX}/+/+/state",
                        f"{topics.PREFIX}/+/+/events")


class BrokerUnreachable(CushionError, ConnectionError):
    """The broker could not be reached (or was lost when something had to be sent)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach the MQTT broker at {url}: {reason}")


class Fleet:
    """One broker connection, kept up, feeding a `FleetModel`; publishes the fleet stop."""

    def __init__(self, settings: MqttSettings, on_lines: Callable[[list[Line]], None]) -> None:
        self.settings = settings
        self.url = str(settings)
        self.model = FleetModel()
        self.on_lines = on_lines
        self.client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()  # set from a loss until the next connect
        self.connects = 0
        self.attempt = 0
        self.lost = False
        self._last_new = 0.0
        self._known = 0

    def _client(self) -> aiomqtt.Client:
        m = self.settings
        return aiomqtt.Client(
            m.host, m.port, username=m.username, password=m.password,
            protocol=aiomqtt.ProtocolVersion.V5 if m.protocol == "5"
            else aiomqtt.ProtocolVersion.V311,
            keepalive=m.keepalive, timeout=10, tls_params=m.tls, logger=log,
        )

    async def run(self) -> None:
        """Stay connected until cancelled; BrokerUnreachable if the first connect fails."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with self._client() as client:
                    no_delay(client)  # the stop-all key's publish must not wait ~40 ms
                    for topic in SUBSCRIPTIONS:
                        await client.subscribe(topic, qos=1)
                    self.client, self.attempt, self.lost = client, 0, False
                    self.connects += 1
                    self._last_new = loop.time()
                    self.disconnected.clear()
                    self.connected.set()
                    self.on_lines([{"kind": "broker", "status": "connected", "url": self.url}])
                    async for message in client.messages:
                        self._take(message, loop.time())
            except aiomqtt.MqttError as exc:
                if self.connects == 0:
                    raise BrokerUnreachable(self.url, str(exc)) from exc
                log.info("broker %s lost: %s", self.url, exc)
                self.lost = True
                self.on_lines([{"kind": "broker", "status": "lost", "error": str(exc)}])
            finally:
                self.client = None
                self.connected.clear()
                self.disconnected.set()
            self.attempt += 1
            await asyncio.sleep(backoff_delay(self.attempt))

    def _take(self, message: aiomqtt.Message, now: float) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else str(
            message.payload or "").encode()
        lines = self.model.on_message(str(message.topic), payload, at=time.time())
        if len(self.model.topics) > self._known:
            self._known = len(self.model.topics)
            self._last_new = now
        if lines:
            self.on_lines(lines)

    async def settled(self) -> None:
        """Wait until connected and the retained messages are in (no new topic for a while)."""
        loop = asyncio.get_running_loop()
        await self.connected.wait()
        start = loop.time()
        while True:
            now = loop.time()
            quiet_for = now - self._last_new
            if quiet_for >= SETTLE_QUIET_S or now - start >= SETTLE_MAX_S:
                return
            await asyncio.sleep(SETTLE_QUIET_S - quiet_for)

    async def stop_all(self, reason: str) -> None:
        """Publish the fleet stop (QoS 1, not retained); BrokerUnreachable if not connected."""
        client = self.client
        if client is None:
            raise BrokerUnreachable(self.url, "not connected")
        payload = FleetStop(reason=reason).model_dump_json()
        try:
            await client.publish(topics.FLEET_STOP, payload, qos=1, timeout=STOP_TIMEOUT_S)
        except aiomqtt.MqttError as exc:
            raise BrokerUnreachable(self.url, str(exc)) from exc
        log.info("fleet stop sent: %s", reason)


def stop_reason(text: str | None, how: str) -> str:
    """Return the fleet stop's reason, naming this host (`how`: the key, or --stop-all)."""
    host = socket.gethostname().split(".")[0]
    return f"{text.strip()} (from {host})" if text and text.strip() else f"{how} on {host}"


# -- the ways to show it ---------------------------------------------------------------------


async def _with_fleet(settings: MqttSettings, on_lines: Callable[[list[Line]], None],
                      body: Callable[[Fleet], Any]) -> None:
    """Run `body(fleet)` while the fleet's connection runs; the first failure to connect ends it."""
    fleet = Fleet(settings, on_lines)
    runner = asyncio.create_task(fleet.run(), name="cushion-fleet-broker")
    work = asyncio.create_task(body(fleet), name="cushion-fleet-view")
    try:
        done, _ = await asyncio.wait({runner, work}, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            runner.result()  # BrokerUnreachable
        await work
    finally:
        for task in (work, runner):
            task.cancel()
        for task in (work, runner):
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


async def _once(settings: MqttSettings, as_json: bool, out: TextIO) -> None:
    async def body(fleet: Fleet) -> None:
        await fleet.settled()
        if as_json:
            for line in fleet.model.snapshot():
                out.write(json.dumps(line, separators=(",", ":")) + "\n")
            return
        from rich.console import Console

        console = Console(file=out, highlight=False)
        console.print(title(fleet.model, fleet.url), style="bold")
        if fleet.model.nodes:
            console.print(table(fleet.model))
        else:
            console.print("no cushion nodes on this broker")

    await _with_fleet(settings, lambda _lines: None, body)


async def _stop_all(settings: MqttSettings, reason: str, as_json: bool, out: TextIO) -> None:
    async def body(fleet: Fleet) -> None:
        await fleet.connected.wait()
        await fleet.stop_all(reason)
        if as_json:
            out.write(json.dumps({"kind": "fleet_stop", "reason": reason, "url": fleet.url},
                                 separators=(",", ":")) + "\n")
        else:
            out.write(f"fleet stop sent on {fleet.url}: {reason}\n")

    await _with_fleet(settings, lambda _lines: None, body)


async def _stream(settings: MqttSettings, out: TextIO, as_json: bool) -> None:
    """One line per change until cancelled: JSON objects, or words (not on a terminal)."""
    model: list[FleetModel] = []
    said: dict[tuple[str, str], str] = {}  # words: the last line per cushion, said once

    def write(lines: list[Line]) -> None:
        for line in lines:
            if as_json:
                text: str | None = json.dumps(line, separators=(",", ":"))
            else:
                text = plain_line(line, model[0])
                if line.get("kind") == "cushion" and text is not None:
                    key = (str(line["node"]), str(line["cushion"]))
                    repeated = said.get(key) == text
                    said[key] = text
                    text = None if repeated else text
            if text is not None:
                out.write(text + "\n")
        out.flush()

    async def body(fleet: Fleet) -> None:
        model.append(fleet.model)
        while True:
            await fleet.settled()
            write([{"kind": "broker", "status": "synced"}])  # once per connection
            await fleet.disconnected.wait()

    await _with_fleet(settings, write, body)


async def _live(settings: MqttSettings, quit_event: asyncio.Event) -> None:
    """The live table on a terminal, keys read in cbreak mode when stdin is one."""
    from rich.console import Console
    from rich.live import Live

    from controller.keys import KeyDecoder, answering

    console = Console(highlight=False)
    dirty = asyncio.Event()
    note: list[str] = [""]
    tasks: set[asyncio.Task[None]] = set()
    keys = sys.stdin.isatty()

    async def body(fleet: Fleet) -> None:
        loop = asyncio.get_running_loop()

        async def stop() -> None:
            reason = stop_reason(None, "stop-all key")
            try:
                await fleet.stop_all(reason)
                note[0] = f"{time.strftime('%H:%M:%S')} fleet stop sent: {reason}"
            except BrokerUnreachable as exc:
                # Not queued for later: a stop sent minutes after the key is a surprise.
                note[0] = f"fleet stop NOT sent ({exc.reason}); press {STOP_KEY} again"
            dirty.set()

        decoder = KeyDecoder()

        def readable() -> None:
            try:
                data = os.read(sys.stdin.fileno(), 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(sys.stdin.fileno())
                return
            for key in decoder.feed(data):
                if key == STOP_KEY:
                    note[0] = "sending the fleet stop..."
                    task = loop.create_task(stop(), name="cushion-fleet-stop")
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                elif key in ("q", "Q"):
                    quit_event.set()
                elif key == "s":
                    note[0] = f"{STOP_KEY} (capital) stops every cushion; s alone does nothing"
                dirty.set()
            decoder.expire()  # a lone Esc means nothing here

        def draw() -> Any:
            return render(fleet.model, url=fleet.url, height=console.size.height,
                          note=note[0], broker_lost=fleet.lost and not fleet.connected.is_set(),
                          keys=keys)

        with contextlib.ExitStack() as stack:
            if keys:
                stack.enter_context(answering(sys.stdin.fileno()))
                loop.add_reader(sys.stdin.fileno(), readable)
                stack.callback(loop.remove_reader, sys.stdin.fileno())
            live = stack.enter_context(Live(draw(), console=console, auto_refresh=False,
                                            transient=False))
            while not quit_event.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):  # the clock in the recent lines
                        await dirty.wait()
                dirty.clear()
                live.update(draw(), refresh=True)
                await asyncio.sleep(REFRESH_MIN_S)
            for task in list(tasks):  # a stop just pressed goes out before we leave
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, STOP_TIMEOUT_S)

    def changed(_lines: list[Line]) -> None:
        dirty.set()

    # Warnings (aiomqtt's "failed to receive on socket") go to the note line, not across
    # the table.
    handler = _NoteHandler(note, dirty)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        await _with_fleet(settings, changed, body)
    finally:
        root.removeHandler(handler)


class _NoteHandler(logging.Handler):
    """Shows the last warning on the live view's note line."""

    def __init__(self, note: list[str], dirty: asyncio.Event) -> None:
        super().__init__(logging.WARNING)
        self.note = note
        self.dirty = dirty

    def emit(self, record: logging.LogRecord) -> None:
        self.note[0] = record.getMessage()
        self.dirty.set()


# -- the command ------------------------------------------------------------------------------


def fleet_main(
    mqtt_url: str, *, password_file: Path | None,
    tls: tuple[Path | None, Path | None, Path | None], as_json: bool, once: bool,
    stop_all: bool, reason: str | None,
) -> int:
    """Run `cushion fleet`; return the exit code."""
    from rich.console import Console
    from rich.markup import escape

    from controller.clock import loop_factory

    if once and stop_all:
        raise UsageError("--once and --stop-all do not go together.", key="--stop-all",
                         hint="Give one: --once shows the fleet, --stop-all stops it.")
    if reason is not None and not stop_all:
        raise UsageError("--reason goes with --stop-all.", key="--reason",
                         hint="Add --stop-all, or leave --reason out.")
    settings = parse_mqtt_url(mqtt_url, password=read_password(password_file),
                              tls=tls_parameters(*tls))
    out = sys.stdout
    live = not (stop_all or once or as_json) and out.isatty()

    async def go() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, done.set)
        if live:
            await _live(settings, done)  # ends itself on q or a signal: terminal restored
            return
        if stop_all:
            job = _stop_all(settings, stop_reason(reason, "cushion fleet --stop-all"),
                            as_json, out)
        elif once:
            job = _once(settings, as_json, out)
        else:
            job = _stream(settings, out, as_json)
        task = asyncio.ensure_future(job)
        waiter = asyncio.ensure_future(done.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (task, waiter):
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        if task.done() and not task.cancelled():
            task.result()

    err = Console(stderr=True, highlight=False)
    try:
        with asyncio.Runner(loop_factory=loop_factory(None)) as runner:
            runner.run(go())
    except BrokerUnreachable as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}.", markup=True,
                  soft_wrap=not err.is_terminal)
        what = "The fleet stop was NOT sent. " if stop_all else ""
        err.print(f"{what}Is the broker running, and are the host and port right?")
        return EXIT_BROKER
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a viewer is left: a clean exit, the terminal restored
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK

"""A node against a real broker (Mosquitto, else amqtt), driven by a real aiomqtt client.

The node runs in-process on the real clock with in-process simulated cushions; every wait
is for a message or a state, with generous time-outs (a loaded 2-core machine), never a
wall-clock speed claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller import mqtt_topics as topics
from controller.clock import loop_factory
from controller.limits import DEFAULT_LIMITS
from controller.mqtt_discovery import HaDeviceConfig
from controller.mqtt_settings import parse_mqtt_url
from controller.node import Node
from controller.node_cushion import CushionSpec
from controller.transports.base import Endpoint
from firmware_profiles import load_profile
from tests.mqtt_broker import pumping

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from tests.mqtt_broker import Broker

TIMEOUT_S = 60.0
PROGRAM = "lumbar-short"


def run(coro: Any) -> Any:
    """Run a test coroutine on the real-time loop."""
    with asyncio.Runner(loop_factory=loop_factory(None)) as runner:
        return runner.run(coro)


class Watcher:
    """A real client that keeps every message on the node's topics."""

    def __init__(self, client: aiomqtt.Client, protocol: str) -> None:
        self.client = client
        self.protocol = protocol
        self.last: dict[str, bytes] = {}
        self.log: list[tuple[str, bytes, Any]] = []
        self.changed = asyncio.Event()

    async def pump(self) -> None:
        async for m in self.client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            self.last[str(m.topic)] = payload
            self.log.append((str(m.topic), payload, m.properties))
            self.changed.set()

    async def until(self, check: Callable[[], Any], what: str) -> Any:
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                got = check()
                if got:
                    return got
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await self.changed.wait()
        raise AssertionError(what)  # pragma: no cover

    def state(self, node: str, cushion: str) -> dict[str, Any] | None:
        raw = self.last.get(topics.state(node, cushion))
        return json.loads(raw) if raw else None

    async def state_where(self, node: str, cushion: str, pred: Callable[[dict[str, Any]], bool],
                          what: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            s = self.state(node, cushion)
            return s if s is not None and pred(s) else None

        return await self.until(check, what)  # type: ignore[no-any-return]

    async def command(
        self, node: str, cushion: str, body: dict[str, Any] | bytes
    ) -> dict[str, Any]:
        """Send a command and return its reply (MQTT 5 response topic, else .../reply + id)."""
        ident = uuid.uuid4().hex
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        n = len(self.log)
        if self.protocol == "5":
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = f"test/replies/{node}"
            props.CorrelationData = ident.encode()
            await self.client.publish(topics.command(node, cushion), data, qos=1,
                                      properties=props)

            def mine() -> dict[str, Any] | None:
                for topic, payload, p in self.log[n:]:
                    if topic == f"test/replies/{node}" and getattr(
                            p, "CorrelationData", None) == ident.encode():
                        return json.loads(payload)  # type: ignore[no-any-return]
                return None
        else:
            if not isinstance(body, bytes):
                data = json.dumps({**body, "id": ident}).encode()
            await self.client.publish(topics.command(node, cushion), data, qos=1)

            def mine() -> dict[str, Any] | None:
                for topic, payload, _ in self.log[n:]:
                    if topic == topics.reply(node):
                        r = json.loads(payload)
                        if r.get("id") in (ident, None):
                            return r  # type: ignore[no-any-return]
                return None

        return await self.until(mine, f"a reply to {body!r}")  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def watcher(broker: Broker) -> AsyncIterator[Watcher]:
    protocol = (aiomqtt.ProtocolVersion.V5 if broker.protocol == "5"
                else aiomqtt.ProtocolVersion.V311)
    async with aiomqtt.Client(broker.host, broker.port, protocol=protocol, timeout=20) as client:
        w = Watcher(client, broker.protocol)
        await client.subscribe("cushion/#", qos=1)
        await client.subscribe("homeassistant/#", qos=1)
        await client.subscribe("test/#", qos=1)
        async with pumping(w.pump):
            yield w


@contextlib.asynccontextmanager
async def node(broker: Broker, node_id: str, *cushions: str) -> AsyncIterator[Node]:
    specs = [CushionSpec(c, Endpoint("sim", c), load_profile(c)) for c in cushions]
    n = Node(parse_mqtt_url(broker.url), specs, node_id=node_id, limits=DEFAULT_LIMITS,
             handle_signals=False)
    task = asyncio.create_task(n.run())
    try:
        async with asyncio.timeout(TIMEOUT_S):
            await n.online.wait()
        yield n
    finally:
        n.request_stop("test over")
        async with asyncio.timeout(TIMEOUT_S):
            await task


def outputs_off(n: Node, cushion: str) -> bool:
    sim = n.slots[cushion].sim
    assert sim is not None
    return all(level <= sim.spec.min_level for level in sim.state.commanded)


def playing(s: dict[str, Any]) -> bool:
    return bool(s["running"] and not s["paused"] and max(s["intensity"]) > 0)


def test_remote_start_pause_resume_stop_and_emergency_stop(mqtt_broker: Broker) -> None:
    async def go() -> None:
        async with watcher(mqtt_broker) as w, node(mqtt_broker, "n1", "lp4-ascii") as n:
            await w.until(lambda: w.last.get(topics.availability("n1")) == b"online", "online")
            reply = await w.command("n1", "lp4-ascii", {"command": "start", "program": PROGRAM})
            assert reply["ok"], reply
            s = await w.state_where("n1", "lp4-ascii", playing, "the cushion playing")
            assert s["program"] == PROGRAM and s["screening"] == "answered"
            assert not outputs_off(n, "lp4-ascii")

            assert (await w.command("n1", "lp4-ascii", {"command": "pause"}))["ok"]
            await w.state_where("n1", "lp4-ascii", lambda s: s["paused"], "paused")
            await w.until(lambda: outputs_off(n, "lp4-ascii"), "outputs off while paused")

            assert (await w.command("n1", "lp4-ascii", {"command": "resume"}))["ok"]
            await w.state_where("n1", "lp4-ascii", playing, "playing again")
            await w.until(lambda: not outputs_off(n, "lp4-ascii"), "outputs on again")

            r = await w.command("n1", "lp4-ascii", {"command": "intensity", "steps": -3})
            assert r["ok"] and r["message"] == "scale 0.7"

            assert (await w.command("n1", "lp4-ascii", {"command": "stop"}))["ok"]
            s = await w.state_where("n1", "lp4-ascii", lambda s: not s["running"], "stopped")
            assert s["last_outcome"] == "stopped"
            assert outputs_off(n, "lp4-ascii")

            assert (await w.command("n1", "lp4-ascii", {"command": "start"}))["ok"]
            await w.state_where("n1", "lp4-ascii", playing, "playing, second session")
            assert (await w.command("n1", "lp4-ascii", {"command": "emergency_stop"}))["ok"]
            await w.state_where("n1", "lp4-ascii", lambda s: not s["running"], "cut")
            assert outputs_off(n, "lp4-ascii")
            stops = [json.loads(p) for t, p, _ in w.log if t == topics.events("n1", "lp4-ascii")
                     and json.loads(p)["kind"] == "stop_requested"]
            assert [s["emergency"] for s in stops] == [False, True]

    run(go())


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"not json", None),
        (b'{"command": "start", "program": "lumbar-short", "max_intensity": 0.95}',
         "max_intensity"),
        (b'{"command": "start", "max_intensity": Infinity}', "max_intensity"),
        (b'{"command": "start", "program": "lumbar-short", "turbo": true}', "turbo"),
        (b'{"command": "start", "program": "no-such-program"}', "program"),
        (b'{"command": "warp"}', "command"),
        (b'{"command": "pause"}', "command"),
    ],
)
def test_bad_and_over_limit_payloads_change_nothing(
    mqtt_broker: Broker, payload: bytes, field: str | None
) -> None:
    async def go() -> None:
        async with watcher(mqtt_broker) as w, node(mqtt_broker, "n2", "lp4-ascii") as n:
            reply = await w.command("n2", "lp4-ascii", payload)
            assert not reply["ok"] and reply["message"]
            if field is not None:
                assert reply["field"] == field, reply
            assert n.slots["lp4-ascii"].task is None
            s = await w.state_where("n2", "lp4-ascii", lambda s: True, "state")
            assert not s["running"]

    run(go())


def test_a_broker_restart_leaves_the_session_running(mqtt_broker: Broker) -> None:
    async def go() -> None:
        async with node(mqtt_broker, "n3", "lp4-ascii") as n:
            async with watcher(mqtt_broker) as w:
                assert (await w.command("n3", "lp4-ascii",
                                        {"command": "start", "program": PROGRAM}))["ok"]
                before = await w.state_where("n3", "lp4-ascii", playing, "playing")
            session = n.slots["lp4-ascii"].session
            assert session is not None
            await asyncio.to_thread(mqtt_broker.restart)
            async with watcher(mqtt_broker) as w:
                await w.until(lambda: n.connects >= 2, "the node reconnected")
                await w.until(lambda: w.last.get(topics.availability("n3")) == b"online",
                              "online again")
                after = await w.state_where(
                    "n3", "lp4-ascii",
                    lambda s: s["running"] and s["remaining_s"] < before["remaining_s"],
                    "the session still running")
                assert not after["paused"] and not session.paused
                assert n.slots["lp4-ascii"].session is session
                # A pattern may dip to zero for a moment; it plays on.
                await w.until(lambda: not outputs_off(n, "lp4-ascii"), "outputs on")
            assert not any(t == topics.events("n3", "lp4-ascii") and b'"paused"' in p
                           for t, p, _ in w.log)

    run(go())


def test_the_fleet_stop_reaches_every_node(mqtt_broker: Broker) -> None:
    async def go() -> None:
        async with (watcher(mqtt_broker) as w, node(mqtt_broker, "a", "lp4-ascii") as a,
                    node(mqtt_broker, "b", "lp4-ascii", "vb6-binary") as b):
            for nid, c in (("a", "lp4-ascii"), ("b", "lp4-ascii"), ("b", "vb6-binary")):
                assert (await w.command(nid, c, {"command": "start", "program": PROGRAM}))["ok"]
                await w.state_where(nid, c, playing, f"{nid}/{c} playing")
            await w.client.publish(topics.FLEET_STOP, b'{"reason": "test rack"}', qos=1)
            for nid, c, nd in (("a", "lp4-ascii", a), ("b", "lp4-ascii", b),
                               ("b", "vb6-binary", b)):
                await w.state_where(nid, c, lambda s: not s["running"], f"{nid}/{c} stopped")
                assert outputs_off(nd, c)

    run(go())


def test_the_heat_switch_turns_heat_off_and_back_to_the_plan(mqtt_broker: Broker) -> None:
    async def go() -> None:
        async with watcher(mqtt_broker) as w, node(mqtt_broker, "h", "lp4-ascii",
                                                   "vb6-binary") as n:
            sim = n.slots["lp4-ascii"].sim
            assert sim is not None
            no_heater = await w.command("h", "vb6-binary", {"command": "heat", "on": True})
            assert not no_heater["ok"] and no_heater["field"] == "on", no_heater
            reply = await w.command("h", "lp4-ascii",
                                    {"command": "start", "program": "radiculitis-gentle"})
            assert reply["ok"], reply
            await w.state_where("h", "lp4-ascii", lambda s: s["heat"] > 0, "heat plays")
            await w.until(lambda: sim.state.heat > 0, "the heater on")

            assert (await w.command("h", "lp4-ascii", {"command": "heat", "on": False}))["ok"]
            s = await w.state_where("h", "lp4-ascii",
                                    lambda s: not s["heat_on"] and s["heat"] == 0, "heat off")
            assert s["running"]
            await w.until(lambda: sim.state.heat == 0, "the heater off")

            r = await w.command("h", "lp4-ascii", {"command": "heat", "on": True})
            assert r["ok"] and r["message"] == "heat on", r
            await w.until(lambda: sim.state.heat > 0, "the heater on again")
            s = await w.state_where("h", "lp4-ascii", lambda s: s["heat_on"] and s["heat"] > 0,
                                    "heat on again")
            # Never above what the plan and the node's cap allow.
            assert s["heat"] <= DEFAULT_LIMITS.heat_max

    run(go())


def test_home_assistant_discovery_matches_the_schema(mqtt_broker: Broker) -> None:
    async def go() -> None:
        async with node(mqtt_broker, "ha", "lp4-ascii", "vb6-binary") as n:
            async with watcher(mqtt_broker) as w:  # after the node: sees the retained copy
                topic = topics.discovery("ha", "lp4-ascii")
                raw = await w.until(lambda: w.last.get(topic), "retained discovery")
                config = HaDeviceConfig.model_validate_json(raw)
                assert {c.platform for c in config.components.values()} == {
                    "select", "button", "number", "switch", "sensor", "binary_sensor"}
                heat = config.components["heat"].model_dump()
                assert heat["state_on"] == "ON" and json.loads(heat["payload_off"]) == {
                    "command": "heat", "on": False}
                # No heater, no heat switch.
                vb6 = HaDeviceConfig.model_validate_json(await w.until(
                    lambda: w.last.get(topics.discovery("ha", "vb6-binary")), "vb6 discovery"))
                assert "heat" not in vb6.components
                assert config.availability_topic == topics.availability("ha")
                assert config.components["intensity"].command_topic == topics.command(
                    "ha", "lp4-ascii")
                count = sum(1 for t, _, _ in w.log if t == topic)
                await w.client.publish(topics.HA_STATUS, b"online", qos=1)
                await w.until(lambda: sum(1 for t, _, _ in w.log if t == topic) > count,
                              "discovery again when Home Assistant comes online")
                await n.remove_cushion("vb6-binary")
                await w.until(lambda: w.last.get(topics.discovery("ha", "vb6-binary")) == b"",
                              "discovery removed")
            async with watcher(mqtt_broker) as w:
                await w.until(lambda: w.last.get(topic), "lp4 still retained")
                # The broker sends a subscription's retained messages before it takes our
                # next publish: once this marker is back, any retained vb6 config would be too.
                await w.client.publish("test/marker", b"1", qos=1)
                await w.until(lambda: w.last.get("test/marker"), "the marker")
                assert topics.discovery("ha", "vb6-binary") not in w.last

    run(go())


def test_serve_puts_a_simulated_cushion_on_the_broker_and_sigterm_ends_it(
    mqtt_broker: Broker,
) -> None:
    import signal
    import subprocess
    import sys

    async def go() -> None:
        async with watcher(mqtt_broker) as w:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "controller", "serve", "--mqtt", mqtt_broker.url,
                "--device", "sim:lp4-ascii", "--node-id", "cli", "--yes",
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                await w.until(lambda: w.last.get(topics.availability("cli")) == b"online",
                              "the served node online")
                assert (await w.command("cli", "lp4-ascii",
                                        {"command": "start", "program": PROGRAM}))["ok"]
                s = await w.state_where("cli", "lp4-ascii", playing, "playing")
                assert s["screening"] == "skipped"
                proc.send_signal(signal.SIGTERM)
                async with asyncio.timeout(TIMEOUT_S):
                    _, stderr = await proc.communicate()
                assert proc.returncode == 0, stderr.decode()
                await w.until(lambda: w.last.get(topics.availability("cli")) == b"offline",
                              "offline")
                s = w.state("cli", "lp4-ascii")
                assert s is not None and not s["running"]
                assert b"password" not in stderr.lower()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    run(go())


def test_serve_bad_input_is_one_clear_error(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from controller.cli import main

    result = CliRunner().invoke(main, ["serve", "--mqtt", "http://x", "--device", "sim:lp4-ascii"])
    assert result.exit_code == 2 and "--mqtt" in result.output
    result = CliRunner().invoke(main, ["serve", "--mqtt", "mqtt://localhost"])
    assert result.exit_code == 2 and "--device" in result.output

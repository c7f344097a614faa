"""`cushion fleet` against a real broker and real `cushion serve` nodes on simulated cushions.

The checks on what the fleet did read the broker (retained states and the event stream, by
a client of this test's own), never the fleet's memory. The live view runs in a real 80x24
pseudo-terminal. Waits are for messages or screens, with generous time-outs; nothing here
depends on wall-clock speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
import pexpect  # type: ignore[import-untyped]
import pytest

from controller import mqtt_topics as topics
from controller.fleet_model import FleetModel
from controller.fleet_view import status_words
from tests.mqtt_broker import free_port

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.mqtt_broker import Broker

CUSHION = str(Path(sys.executable).with_name("cushion"))
WAIT_S = 60.0
PROGRAM = "lumbar-short"
HOST = socket.gethostname().split(".")[0]


# -- the model, alone -------------------------------------------------------------------------


def _state(node: str, cushion: str, **changes: Any) -> bytes:
    base = {"node": node, "cushion": cushion, "running": False, "paused": False,
            "connected": False, "program": None, "phase": None, "technique": None,
            "intensity": [0.0], "remaining_s": None, "last_outcome": None,
            "last_fault": None, "screening": "answered"}
    return json.dumps({**base, **changes}).encode()


def test_the_model_reports_each_change_once() -> None:
    m = FleetModel()
    assert m.on_message("cushion/a/status", b"online") == [
        {"kind": "node", "node": "a", "status": "online"}]
    assert m.on_message("cushion/a/status", b"online") == []  # a retained copy again
    lines = m.on_message("cushion/a/c1/state", _state("a", "c1"))
    assert [line["kind"] for line in lines] == ["cushion"]
    assert m.on_message("cushion/a/c1/state", _state("a", "c1")) == []
    lines = m.on_message("cushion/b/c2/state", _state("b", "c2", running=True))
    assert lines[0] == {"kind": "node", "node": "b", "status": "unknown"}  # state came first
    assert m.running() == 1
    m.on_message("cushion/b/status", b"offline")
    assert m.running() == 0  # an offline node's last state is not a running session
    assert status_words(m.nodes["b"], m.cushions[("b", "c2")]) == "node offline"
    assert m.on_message("cushion/a/c1/state", b"") == [
        {"kind": "cushion", "node": "a", "cushion": "c1", "state": None}]
    assert m.rows() == [("a", None, None), ("b", "c2", json.loads(_state("b", "c2",
                                                                         running=True)))]
    for topic, payload in (("cushion/fleet/stop", b"{}"), ("cushion/a/c1/state", b"[1]"),
                           ("cushion/a/status", b"maybe"), ("cushion/a/c1/events", b"nope"),
                           ("other/a/status", b"online")):
        assert m.on_message(topic, payload) == []
    ev = m.on_message("cushion/a/c1/events", b'{"kind": "fault", "message": "x"}', at=5.0)
    assert ev[0]["event"]["kind"] == "fault" and list(m.recent)[-1][0] == 5.0


# -- against a real broker --------------------------------------------------------------------


class BrokerLog:
    """A client of the test's own, on a thread: the last message per topic, and all events."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.last: dict[str, bytes] = {}
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._pump()), daemon=True)

    async def _pump(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        protocol = (aiomqtt.ProtocolVersion.V5 if self.broker.protocol == "5"
                    else aiomqtt.ProtocolVersion.V311)
        async with aiomqtt.Client(self.broker.host, self.broker.port, protocol=protocol,
                                  timeout=20) as client:
            await client.subscribe("cushion/#", qos=1)
            self.client = client
            self._ready.set()
            reader = asyncio.create_task(self._read(client))
            await self._stop.wait()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await reader

    async def _read(self, client: aiomqtt.Client) -> None:
        async for m in client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            with self._lock:
                self.last[str(m.topic)] = payload
                if str(m.topic).endswith("/events"):
                    self.events.append((str(m.topic), json.loads(payload)))

    def __enter__(self) -> BrokerLog:
        self._thread.start()
        assert self._ready.wait(WAIT_S), "the test's own client did not connect"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(WAIT_S)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Publish from the test's client (QoS 1) and wait until it went out."""
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(
            self.client.publish(topic, json.dumps(payload), qos=1), self._loop)
        fut.result(WAIT_S)

    def until(self, check: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + WAIT_S
        while True:
            with self._lock:
                got = check()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def state(self, node: str, cushion: str) -> dict[str, Any] | None:
        raw = self.last.get(topics.state(node, cushion))
        return json.loads(raw) if raw else None

    def status(self, node: str) -> bytes | None:
        return self.last.get(topics.availability(node))


@contextlib.contextmanager
def serve(broker: Broker, node: str, *devices: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real `cushion serve` node process, ended (SIGTERM, then SIGKILL) when the block ends."""
    args = [CUSHION, "serve", "--mqtt", broker.url, "--node-id", node, "--yes"]
    for d in devices:
        args += ["--device", f"sim:{d}"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(WAIT_S)
        if proc.stderr is not None:
            proc.stderr.close()


def fleet(broker: Broker, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `cushion fleet --mqtt <broker> ARGS` to its end."""
    return subprocess.run([CUSHION, "fleet", "--mqtt", broker.url, *args], capture_output=True,
                          text=True, timeout=WAIT_S, stdin=subprocess.DEVNULL)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def start(log: BrokerLog, node: str, cushion: str) -> None:
    """Start PROGRAM on a node's cushion and wait until its retained state says running."""
    log.publish(topics.command(node, cushion), {"command": "start", "program": PROGRAM})
    log.until(lambda: (s := log.state(node, cushion)) is not None and s["running"]
              and s["connected"], f"{node}/{cushion} running")


def online(log: BrokerLog, node: str) -> None:
    """Wait until the node's retained status says online."""
    log.until(lambda: log.status(node) == b"online", f"{node} online")


def stopped_by_fleet(log: BrokerLog, node: str, cushion: str, reason: str) -> bool:
    s = log.state(node, cushion)
    stops = [e for t, e in log.events
             if t == topics.events(node, cushion) and e["kind"] == "stop_requested"]
    return bool(s is not None and not s["running"] and stops and stops[-1]["emergency"]
                and stops[-1]["reason"] == f"fleet stop: {reason}")


def test_two_nodes_appear_and_a_killed_one_goes_offline_by_its_last_will(
    mqtt_broker: Broker,
) -> None:
    with (BrokerLog(mqtt_broker) as log, serve(mqtt_broker, "alpha", "lp4-ascii"),
          serve(mqtt_broker, "bravo", "vb6-binary") as bravo):
        for node in ("alpha", "bravo"):
            online(log, node)
        done = fleet(mqtt_broker, "--once", "--json")
        assert done.returncode == 0, done.stderr
        lines = json_lines(done.stdout)
        assert {(x["node"], x["status"]) for x in lines if x["kind"] == "node"} >= {
            ("alpha", "online"), ("bravo", "online")}
        states = {(x["node"], x["cushion"]): x["state"] for x in lines if x["kind"] == "cushion"}
        assert states.keys() >= {("alpha", "lp4-ascii"), ("bravo", "vb6-binary")}
        assert states[("bravo", "vb6-binary")]["profile"] == "vb6-binary"

        start(log, "alpha", "lp4-ascii")
        done = fleet(mqtt_broker, "--stop-all", "--reason", "rack drill")
        assert done.returncode == 0, done.stderr
        assert "fleet stop sent" in done.stdout
        log.until(lambda: stopped_by_fleet(log, "alpha", "lp4-ascii",
                                           f"rack drill (from {HOST})"),
                  "alpha stopped by the fleet stop, with the reason given")

        bravo.send_signal(signal.SIGKILL)  # no goodbye: only the last will says offline
        bravo.wait(WAIT_S)
        log.until(lambda: log.status("bravo") == b"offline", "bravo's last will")
        done = fleet(mqtt_broker, "--once", "--json")
        nodes = {x["node"]: x["status"] for x in json_lines(done.stdout) if x["kind"] == "node"}
        assert nodes["bravo"] == "offline" and nodes["alpha"] == "online"
        done = fleet(mqtt_broker, "--once")
        assert done.returncode == 0, done.stderr
        rows = {line.split()[0]: line for line in done.stdout.splitlines()[2:] if line.strip()}
        assert "node offline" in rows["bravo"] and "stopped" in rows["alpha"], done.stdout


def _spawn_view(broker: Broker) -> pexpect.spawn:
    # Through a shell, so the terminal's modes after the view are printed by `stty`.
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    return pexpect.spawn("/bin/sh", ["-c", f"{CUSHION} fleet --mqtt '{broker.url}'; "
                                     "echo EXIT=$?; stty -a"],
                         env=env, dimensions=(24, 80), encoding="utf-8",
                         codec_errors="replace", timeout=WAIT_S)


@pytest.mark.realtime
def test_the_live_view_shows_both_nodes_and_its_key_stops_them_all(
    mqtt_broker: Broker,
) -> None:
    with (BrokerLog(mqtt_broker) as log, serve(mqtt_broker, "alpha", "lp4-ascii"),
          serve(mqtt_broker, "bravo", "vb6-binary")):
        for node, cushion in (("alpha", "lp4-ascii"), ("bravo", "vb6-binary")):
            online(log, node)
            start(log, node, cushion)
        view = _spawn_view(mqtt_broker)
        try:
            view.expect(r"2 nodes \(2 online\), 2 cushions, 2 running")
            view.expect("S \\(capital\\) stop every cushion now")
            view.send("s")  # lower case: only a hint, nothing is stopped
            view.expect("s alone does nothing")
            assert log.state("alpha", "lp4-ascii")["running"]  # type: ignore[index]
            view.send("S")
            reason = f"stop-all key on {HOST}"
            for node, cushion in (("alpha", "lp4-ascii"), ("bravo", "vb6-binary")):
                log.until(functools.partial(stopped_by_fleet, log, node, cushion, reason),
                          f"{node}/{cushion} stopped by the fleet stop")
            view.expect("0 running")

            mqtt_broker.restart(down_s=2.0)
            view.expect("broker lost, reconnecting")
            view.expect(r"2 nodes \(2 online\)")  # back, and the nodes with it

            view.send("q")
            view.expect(r"EXIT=(\d+)")
            assert view.match.group(1) == "0"
            view.expect(pexpect.EOF)
            modes = str(view.before)
            assert " icanon" in modes and " echo" in modes, modes  # the terminal restored
        finally:
            view.close(force=True)


def test_bad_url_and_unreachable_broker_are_clear_errors() -> None:
    done = subprocess.run([CUSHION, "fleet", "--mqtt", "http://x", "--once"],
                          capture_output=True, text=True, timeout=WAIT_S)
    assert done.returncode == 2 and "--mqtt" in done.stderr
    url = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    for extra in (["--once"], ["--stop-all"], ["--json"]):
        done = subprocess.run([CUSHION, "fleet", "--mqtt", url, *extra], capture_output=True,
                              text=True, timeout=WAIT_S)
        assert done.returncode == 3, (extra, done.stderr)
        assert url in done.stderr and "Traceback" not in done.stderr
        assert ("NOT sent" in done.stderr) == (extra == ["--stop-all"]), done.stderr
    done = subprocess.run([CUSHION, "fleet", "--mqtt", url, "--once", "--stop-all"],
                          capture_output=True, text=True, timeout=WAIT_S)
    assert done.returncode == 2 and "--stop-all" in done.stderr


def test_a_big_fleet_fits_80x24() -> None:
    from rich.console import Console

    from controller.fleet_view import render

    m = FleetModel()
    for n in range(8):
        m.on_message(f"cushion/node-with-a-long-name-{n}/status", b"online")
        for c in ("lp4-ascii", "vb6-binary", "a-cushion-with-a-long-id"):
            m.on_message(f"cushion/node-with-a-long-name-{n}/{c}/state", _state(
                f"node-{n}", c, running=True, connected=True, program="lumbar-classic-long",
                phase="Introductory", technique="vibration-intermittent", remaining_s=901.0,
                intensity=[0.5, 0.25]))
        m.on_message(f"cushion/node-with-a-long-name-{n}/lp4-ascii/events",
                     b'{"kind": "fault", "message": "' + b"x" * 200 + b'"}', at=0.0)
    console = Console(width=80, height=24, record=True, color_system=None)
    console.print(render(m, url="mqtt://broker.example.org:1883", height=24, note="",
                         broker_lost=True, keys=True))
    lines = console.export_text().splitlines()
    assert len(lines) < 24 and max(len(line) for line in lines) <= 80, lines
    assert all(line.rstrip().endswith("50%") for line in lines[2:-6]), lines  # level shown
    assert all(" running " in line for line in lines[2:-6]), lines  # status not cut
    assert "more (--json lists all)" in lines[-6] and "broker lost" in lines[-2]
    assert "S (capital) stop every cushion now" in lines[-1]

"""Shared parts of the MQTT benches: a broker, node processes, simulated cushions on ptys.

The broker is the test fixture's (`tests/mqtt_broker.py`: Mosquitto on a free loopback port,
else amqtt). Each node is a real `cushion serve` subprocess with scratch config, journal and
data folder; its cushions are `SimulatedCushion`s on real ptys hosted by the bench process,
whose recorders stamp each decoded frame with the bench loop's `time.monotonic` clock. The
bench's MQTT client lives in the same process and loop, so a publish time and a frame's
decode time are read from one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiomqtt
import benchlib
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller import mqtt_topics as topics
from controller.mqtt_settings import no_delay
from firmware_profiles import Profile
from firmware_profiles.commands import Stop
from hil.cushion import SimulatedCushion
from hil.ptylink import PtyLink
from hil.recorder import Event
from tests.mqtt_broker import Broker, pumping

PROFILE = "lp4-ascii"
PROGRAM = "lumbar-short"
RAMP_PER_S = 0.04  # the hard bound (as in the other benches), so outputs come up quickly
REPLIES = "bench/replies"
ROUND_TRIP = "bench/rt"
NODE_START_TIMEOUT_S = 60.0  # a loaded 2-core machine can take long to import and connect


@contextlib.contextmanager
def broker(workdir: Path) -> Iterator[Broker]:
    """Run the tests' broker (Mosquitto, else amqtt) on a free port until the block ends."""
    b = Broker(workdir)
    if b.protocol != "5":
        raise SystemExit("the MQTT benches need Mosquitto (MQTT 5 replies); amqtt speaks 3.1.1")
    b.start()
    try:
        yield b
    finally:
        b.stop()


def scratch_env(workdir: Path, programs: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment of a node: scratch config (screening answered), data folder.

    The config raises the ramp to its hard bound and turns the course's sparing first
    sessions off, so every bench session plays the same plan; the daily dose budget is at
    its documented maximum so repeated short sessions are never refused.
    """
    from protocols.contraindications import CHECKLIST

    data = workdir / "data"
    (data / "programs").mkdir(parents=True, exist_ok=True)
    for name, text in (programs or {}).items():
        (data / "programs" / f"{name}.toml").write_text(text, encoding="utf-8")
    answers = "".join(f"{c.key} = false\n" for c in CHECKLIST)
    config = workdir / "config.toml"
    config.write_text(
        f"[limits]\nallow_raise = true\nramp_per_s = {RAMP_PER_S}\n\n"
        "[course]\nsparing_sessions = 0\ndaily_dose_s = 3072\n\n"
        f"[screening]\nanswered_on = {datetime.date.today().isoformat()}\n\n"
        f"[screening.answers]\n{answers}",
        encoding="utf-8",
    )
    env = dict(os.environ)
    env.update(CUSHION_CONFIG=str(config), CUSHION_DATA_DIR=str(data))
    env.setdefault("PYTHONPATH", str(benchlib.ROOT))
    return env


# -- simulated cushions -------------------------------------------------------------------


@dataclass
class Sim:
    """One simulated cushion on its own pty, named as its node knows it."""

    name: str
    cushion: SimulatedCushion
    link: PtyLink

    @property
    def port(self) -> str:
        """Return the pty path a node opens."""
        return self.link.port

    def levels(self) -> tuple[int, ...]:
        """Return the levels the simulated firmware holds now (per zone)."""
        return self.cushion.recorder.last_levels()

    def on(self) -> bool:
        """Tell whether any zone plays."""
        return any(level > self.cushion.recorder.off_level for level in self.levels())

    def first(self, since: float, match: Callable[[Event, tuple[int, ...]], bool]) -> Waiter:
        """Return a waiter for the first event at or after `since` that `match`es.

        `match` sees each event and the zone levels after it; the levels start from the
        recorder's current ones.
        """
        return Waiter(self, since, match)


class Waiter:
    """Resolves to the loop time of the first matching recorder event (a recorder watcher)."""

    def __init__(
        self, sim: Sim, since: float, match: Callable[[Event, tuple[int, ...]], bool]
    ) -> None:
        self.future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._since = since
        self._match = match
        self._levels = list(sim.levels())
        self._unsubscribe = sim.cushion.recorder.subscribe(self._see)

    def _see(self, event: Event) -> None:
        if event.kind == "level":
            zone, level = cast("tuple[int, int]", event.detail)
            self._levels[zone] = level
        if event.t >= self._since and not self.future.done() and self._match(
            event, tuple(self._levels)
        ):
            self.future.set_result(event.t)
            self._unsubscribe()

    async def wait(self, within: float) -> float:
        """Return the matching event's time, or inf if none came `within` s."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.future), within)
        except TimeoutError:
            return float("inf")
        finally:
            self._unsubscribe()


def is_stop(event: Event, _levels: tuple[int, ...]) -> bool:
    """Match the decoded Stop frame."""
    return event.kind == "command" and isinstance(event.detail, Stop)


def all_off(event: Event, levels: tuple[int, ...]) -> bool:
    """Match the decoded frame after which every zone is off."""
    return event.kind == "level" and not any(levels)


def any_on(event: Event, levels: tuple[int, ...]) -> bool:
    """Match the decoded frame after which some zone plays."""
    return event.kind == "level" and any(levels)


@contextlib.asynccontextmanager
async def sims(count: int, profile: Profile, prefix: str = "c") -> AsyncIterator[list[Sim]]:
    """Open `count` simulated cushions, each on a fresh pty; closed when the block ends."""
    async with contextlib.AsyncExitStack() as stack:
        out = []
        for i in range(count):
            cushion = SimulatedCushion(profile)
            link = await stack.enter_async_context(PtyLink(cushion))
            out.append(Sim(f"{prefix}{i:03d}", cushion, link))
        yield out


# -- nodes -----------------------------------------------------------------------------------


@dataclass
class NodeProc:
    """A `cushion serve` subprocess owning some of the bench's simulated cushions."""

    node_id: str
    sims: list[Sim]
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        """Return the node's process id."""
        return self.proc.pid

    async def stop(self) -> None:
        """SIGTERM (the node cuts every cushion and says offline), SIGKILL after 30 s."""
        if self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def start_node(
    node_id: str, cushions: Sequence[Sim], url: str, env: dict[str, str], workdir: Path,
    *, cprofile: Path | None = None,
) -> NodeProc:
    """Start `cushion serve --mqtt URL --device serial:PTY?profile=..&name=.. --yes`.

    With `cprofile`, the node runs under cProfile and writes its stats there when it ends.
    """
    devices = []
    for sim in cushions:
        devices += ["--device", f"serial:{sim.port}?profile={PROFILE}&name={sim.name}"]
    log = workdir / f"node-{node_id}.log"
    node_env = dict(env, CUSHION_JOURNAL=str(workdir / f"journal-{node_id}.sqlite3"))
    profiler = ["-m", "cProfile", "-o", str(cprofile)] if cprofile is not None else []
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *profiler, "-m", "controller", "serve", "--mqtt", url, *devices,
            "--node-id", node_id, "--yes",
            cwd=benchlib.ROOT, env=node_env, stdin=asyncio.subprocess.DEVNULL,
            stdout=out, stderr=out,
        )
    return NodeProc(node_id, list(cushions), proc, log)


# -- the bench's MQTT client -----------------------------------------------------------------


@dataclass
class Reply:
    """A node's reply to one command, and when it arrived (loop time)."""

    t: float
    body: dict[str, Any]


@dataclass
class BenchClient:
    """One aiomqtt client: commands with MQTT 5 replies, availability, round trips, taps."""

    client: aiomqtt.Client
    status: dict[str, str] = field(default_factory=dict)
    taps: list[Callable[[str, bytes, float], None]] = field(default_factory=list)
    _replies: dict[bytes, asyncio.Future[Reply]] = field(default_factory=dict)
    _trips: dict[bytes, asyncio.Future[float]] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def pump(self) -> None:
        """Dispatch every message (run as a task)."""
        loop = asyncio.get_running_loop()
        async for m in self.client.messages:
            t = loop.time()
            topic = str(m.topic)
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            if topic == ROUND_TRIP:
                trip = self._trips.pop(payload, None)
                if trip is not None and not trip.done():
                    trip.set_result(t)
            elif topic == REPLIES:
                corr = getattr(m.properties, "CorrelationData", None)
                fut = self._replies.pop(corr, None) if corr is not None else None
                if fut is not None and not fut.done():
                    fut.set_result(Reply(t, json.loads(payload)))
            elif topic.startswith(f"{topics.PREFIX}/") and topic.endswith("/status"):
                self.status[topic.split("/")[1]] = payload.decode()
                self._changed.set()
            for tap in self.taps:
                tap(topic, payload, t)

    async def send(
        self, node: str, cushion: str, body: dict[str, Any]
    ) -> tuple[float, asyncio.Future[Reply]]:
        """Publish a command (QoS 1); return the loop time just before and the reply's future."""
        loop = asyncio.get_running_loop()
        corr = uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = REPLIES
        props.CorrelationData = corr
        fut: asyncio.Future[Reply] = loop.create_future()
        self._replies[corr] = fut
        t0 = loop.time()
        await self.client.publish(
            topics.command(node, cushion), json.dumps(body), qos=1, properties=props
        )
        return t0, fut

    async def command(
        self, node: str, cushion: str, body: dict[str, Any], within: float = 60.0
    ) -> Reply:
        """Send a command and wait for its reply; SystemExit if it is refused or never comes."""
        _, fut = await self.send(node, cushion, body)
        try:
            reply = await asyncio.wait_for(fut, within)
        except TimeoutError:
            raise SystemExit(f"no reply from {node}/{cushion} to {body}") from None
        if not reply.body.get("ok"):
            raise SystemExit(f"{node}/{cushion} refused {body}: {reply.body.get('message')}")
        return reply

    async def round_trip(self, within: float = 10.0) -> float:
        """Return one bare publish -> receive time (s) through the broker, QoS 1 both ways."""
        loop = asyncio.get_running_loop()
        key = uuid.uuid4().bytes
        fut: asyncio.Future[float] = loop.create_future()
        self._trips[key] = fut
        t0 = loop.time()
        await self.client.publish(ROUND_TRIP, key, qos=1)
        try:
            return await asyncio.wait_for(fut, within) - t0
        except TimeoutError:
            self._trips.pop(key, None)
            return float("inf")

    async def online(self, nodes: Sequence[str], within: float = NODE_START_TIMEOUT_S) -> None:
        """Wait until every node in `nodes` says online; SystemExit naming the missing ones."""
        try:
            async with asyncio.timeout(within):
                while any(self.status.get(n) != "online" for n in nodes):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            missing = [n for n in nodes if self.status.get(n) != "online"]
            raise SystemExit(f"nodes never came online: {', '.join(missing)}") from None


@contextlib.asynccontextmanager
async def bench_client(b: Broker, *extra: str) -> AsyncIterator[BenchClient]:
    """Connect a bench client subscribed to replies, round trips, availability and `extra`."""
    async with aiomqtt.Client(
        b.host, b.port, protocol=aiomqtt.ProtocolVersion.V5, timeout=30,
        identifier=f"bench-{uuid.uuid4().hex[:8]}",
    ) as client:
        client.pending_calls_threshold = 1000  # 50 starts at once are expected here
        no_delay(client)  # as the node does: else a command behind a round trip waits ~40 ms
        bc = BenchClient(client)
        for topic in (REPLIES, ROUND_TRIP, f"{topics.PREFIX}/+/status", *extra):
            await client.subscribe(topic, qos=1)
        async with pumping(bc.pump):
            yield bc


def load_line() -> str:
    """Return the load average now (1, 5, 15 min)."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"

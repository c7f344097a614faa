"""Fleet stop: 50 simulated cushions over 5 node processes, beside one node with one cushion.

Run: .venv/bin/python bench/mqtt_fleet_stop.py [--reps N] [--quick]

Mosquitto runs on a free loopback port. This process hosts 51 simulated lp4-ascii cushions,
each on its own real pty; five `cushion serve` subprocesses own ten of them each (`--device
serial:PTY?profile=lp4-ascii&name=cNNN` x 10, scratch config, journal and data folder), and
a sixth, the baseline, owns one. Each repetition:

  one cushion   start `lumbar-short` on the baseline node's cushion (MQTT command), wait
                until its outputs have come on, publish `cushion/fleet/stop` (QoS 1) and
                time publish -> that cushion's Stop frame decoded by its simulator;
  fleet         start the same program on all 50 cushions of the five nodes, wait until
                every one has come on, publish `cushion/fleet/stop`, and time publish ->
                each cushion's Stop frame decoded (50 figures; "last" is the slowest).

A bare aiomqtt publish -> receive round trip on the same broker (QoS 1) is taken before each
stop. All clocks are this process's loop (the simulators and the publisher live here).

Target: all outputs off within 100 ms (p99) of the fleet stop message.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import benchlib
import mqtt_rig

from controller import mqtt_topics as topics
from firmware_profiles import load_profile

TARGET_P99_S = 0.100
NODES = 5
PER_NODE = 10
ON_TIMEOUT_S = 30.0
STOP_WAIT_S = 5.0


@dataclass
class Results:
    """Seconds from the fleet stop to each cushion's Stop frame, per repetition."""

    solo: list[float] = field(default_factory=list)
    fleet: list[list[float]] = field(default_factory=list)  # per rep, per cushion (node order)
    on_at_stop: list[int] = field(default_factory=list)  # fleet cushions playing at the stop
    not_running: list[int] = field(default_factory=list)  # fleet cushions that never came on
    lost: list[str] = field(default_factory=list)  # why a Stop frame never came, per case
    died: list[str] = field(default_factory=list)  # sessions that ended before the stop
    bare: list[float] = field(default_factory=list)
    load: list[str] = field(default_factory=list)


async def start(mq: mqtt_rig.BenchClient, node: str, sim: mqtt_rig.Sim) -> None:
    """Start the program; retry while the previous session is still winding down."""
    body = {"command": "start", "program": mqtt_rig.PROGRAM}
    for _ in range(40):
        _, fut = await mq.send(node, sim.name, body)
        reply = await asyncio.wait_for(fut, 60)
        if reply.body.get("ok"):
            return
        if "already running" not in str(reply.body.get("message")):
            raise SystemExit(f"{node}/{sim.name} refused the start: {reply.body['message']}")
        await asyncio.sleep(0.25)
    raise SystemExit(f"{node}/{sim.name}: the previous session never ended")


async def start_all(
    mq: mqtt_rig.BenchClient, cushions: Sequence[tuple[str, mqtt_rig.Sim]]
) -> list[mqtt_rig.Sim]:
    """Start every cushion; return those whose outputs came on.

    Nodes start in parallel, each node's cushions one after the other: ten starts at once
    on one node fault some of them (see docs/benchmarks-mqtt.md).
    """
    loop = asyncio.get_running_loop()
    waiters = [sim.first(loop.time(), mqtt_rig.any_on) for _, sim in cushions]
    by_node: dict[str, list[mqtt_rig.Sim]] = {}
    for node, sim in cushions:
        by_node.setdefault(node, []).append(sim)

    async def one_node(node: str, sims: list[mqtt_rig.Sim]) -> None:
        for sim in sims:
            await start(mq, node, sim)

    await asyncio.gather(*(one_node(n, s) for n, s in by_node.items()))
    came = await asyncio.gather(*(w.wait(ON_TIMEOUT_S) for w in waiters))
    return [sim for (_, sim), t in zip(cushions, came, strict=True) if t != float("inf")]


async def fleet_stop(mq: mqtt_rig.BenchClient, sims: Sequence[mqtt_rig.Sim]) -> list[float]:
    """Publish the fleet stop; return publish -> Stop frame decoded, per cushion (s)."""
    loop = asyncio.get_running_loop()
    since = loop.time()
    waiters = [sim.first(since, mqtt_rig.is_stop) for sim in sims]
    t0 = loop.time()
    await mq.client.publish(topics.FLEET_STOP, '{"reason": "bench"}', qos=1)
    return [t - t0 for t in await asyncio.gather(*(w.wait(STOP_WAIT_S) for w in waiters))]


def explain(sim: mqtt_rig.Sim, nodes: Sequence[mqtt_rig.NodeProc], now: float) -> str:
    """Say what the simulator last decoded and what its node logged about it."""
    commands = [e for e in sim.cushion.recorder.events if e.kind == "command"]
    last = f"{now - commands[-1].t:.2f} s before" if commands else "never"
    links = [str(e.detail) for e in sim.cushion.recorder.events if e.kind == "link"]
    logged = []
    for node in nodes:
        if sim in node.sims:
            lines = node.log.read_text(errors="replace").splitlines()
            logged = [ln for ln in lines if f" {sim.name}:" in ln][-2:]
    return (f"{sim.name}: last frame decoded {last}; link events {links}; node log: "
            + " | ".join(logged))


async def measure(reps: int, rng: random.Random, workdir: Path) -> Results:
    """Run the six nodes and `reps` repetitions of both stops."""
    profile = load_profile(mqtt_rig.PROFILE)
    res = Results()
    env = mqtt_rig.scratch_env(workdir)
    with mqtt_rig.broker(workdir) as b:
        async with mqtt_rig.sims(NODES * PER_NODE, profile) as fleet, mqtt_rig.sims(
            1, profile, prefix="s"
        ) as (solo,), mqtt_rig.bench_client(b) as mq:
            owners = [(f"n{i}", fleet[i * PER_NODE:(i + 1) * PER_NODE]) for i in range(NODES)]
            nodes = await asyncio.gather(
                mqtt_rig.start_node("solo", [solo], b.url, env, workdir),
                *(mqtt_rig.start_node(n, s, b.url, env, workdir) for n, s in owners),
            )
            try:
                await mq.online([n.node_id for n in nodes])
                res.load.append(mqtt_rig.load_line())
                everyone = [(n, s) for n, group in owners for s in group]
                loop = asyncio.get_running_loop()
                for _ in range(reps):
                    running = await start_all(mq, [("solo", solo)])
                    await asyncio.sleep(rng.uniform(0.0, 0.1))
                    res.bare.append(await mq.round_trip())
                    res.solo += await fleet_stop(mq, running)
                    running = await start_all(mq, everyone)
                    res.not_running.append(len(fleet) - len(running))
                    await asyncio.sleep(rng.uniform(0.0, 0.1))
                    res.bare.append(await mq.round_trip())
                    # A session that failed since it came on closed its port: nothing to stop.
                    for sim in [s for s in running if not s.link.connected]:
                        res.died.append(explain(sim, nodes, loop.time()))
                        running.remove(sim)
                    res.on_at_stop.append(sum(1 for s in running if s.on()))
                    stops = await fleet_stop(mq, running)
                    mine = dict(zip((s.name for s in running), stops, strict=True))
                    for sim, t in zip(running, stops, strict=True):
                        if t == float("inf"):
                            res.lost.append(explain(sim, nodes, loop.time()))
                    res.fleet.append([mine.get(s.name, float("nan")) for s in fleet])
                res.load.append(mqtt_rig.load_line())
            finally:
                await asyncio.gather(*(n.stop() for n in nodes))
    return res


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reps", type=int, default=6, help="repetitions of each stop")
    parser.add_argument("--quick", action="store_true", help="2 repetitions")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    reps = 2 if args.quick else args.reps
    print(benchlib.machine())
    with tempfile.TemporaryDirectory(prefix="cushion-bench-") as tmp:
        try:
            res = asyncio.run(measure(reps, random.Random(args.seed), Path(tmp)))
        except SystemExit:
            for log in sorted(Path(tmp).glob("node-*.log")):
                print(f"--- {log.name} (last lines)\n" + "\n".join(
                    log.read_text(errors="replace").splitlines()[-8:]))
            raise
    print(f"{mqtt_rig.PROFILE}, {mqtt_rig.PROGRAM}, {NODES} nodes x {PER_NODE} cushions, "
          f"{reps} repetitions; {'; '.join(res.load)} (start; end); fleet cushions playing "
          f"at the stop: {', '.join(map(str, res.on_at_stop))} of {NODES * PER_NODE}; "
          f"never came on: {', '.join(map(str, res.not_running))}; ended before the stop: "
          f"{len(res.died)}\n")
    pooled = [v for rep in res.fleet for v in rep if v == v]  # NaN: that one never ran
    lasts = [max(v for v in rep if v == v) for rep in res.fleet]
    rows = []
    for label, values in (
        ("fleet: each cushion", pooled),
        ("fleet: last cushion per stop", lasts),
        ("one node, one cushion", res.solo),
        ("bare publish -> receive", res.bare),
    ):
        lost = sum(1 for v in values if v == float("inf"))
        rows.append([label, len(values), lost, *benchlib.summary_ms(values)])
    print(benchlib.table(["path", "n", "lost", "p50 ms", "p99 ms", "max ms"], rows))
    print("\nper node (all repetitions), first and last of its ten cushions, ms:")
    node_rows = []
    for i in range(NODES):
        mine = [[v for v in rep[i * PER_NODE:(i + 1) * PER_NODE] if v == v] for rep in res.fleet]
        firsts = [min(m) for m in mine if m]
        last = [max(m) for m in mine if m]
        node_rows.append([f"n{i}", *benchlib.summary_ms(firsts)[::2],
                          *benchlib.summary_ms(last)[::2]])
    print(benchlib.table(["node", "first p50", "first max", "last p50", "last max"], node_rows))
    for why in res.died:
        print(f"ended before the stop (left out): {why}")
    for why in res.lost:
        print(f"no Stop frame: {why}")
    _, p99, _ = benchlib.summary_ms(pooled)
    met = p99 <= TARGET_P99_S * 1e3
    print(f"\nfleet stop p99 {p99:.1f} ms (target <= {TARGET_P99_S * 1e3:g} ms): "
          f"{'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()

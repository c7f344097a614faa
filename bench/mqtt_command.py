"""Command to bytes on a simulated cushion through a real broker, beside a bare round trip.

Run: .venv/bin/python bench/mqtt_command.py [--trials N] [--quick]

Mosquitto runs on a free loopback port; one simulated lp4-ascii cushion sits on a real pty in
this process; `cushion serve --mqtt ... --device serial:PTY?profile=lp4-ascii --yes` runs as
a subprocess (scratch config, journal and data folder) and is started on `lumbar-short` by
MQTT. Then, QoS 1 with an MQTT 5 response topic, this process publishes commands whose effect
shows on the wire and times publish -> the first matching frame decoded by the simulator
(one clock: the sim, the publisher and its loop are all here):

  pause            -> the Stop frame (the session halts the device: the stop path)
  intensity 10 %   -> the frame after which every zone is off (scaled below one level;
                      the setpoint path, paced by the cushion's 20 Hz update limit)
  intensity 100 %  -> the first frame turning a zone on again (the plan's next nonzero
                      sample, so it includes the plan's own zero stretches: not a target)

`resume` is sent after every pause but not timed: its wire effect waits for the ramp rule.
Baselines in the same run: a bare aiomqtt publish -> receive on the same broker (QoS 1, one
before each command) and, after the node is gone, two in-process paths with no MQTT from
`bench/estop.py`: a raw write of a Stop frame to a pty (`SerialTransport`, no facade), and
`device.set(all zeros)` during a 10 Hz stream (the setpoint path and its update-rate limit,
which `intensity` goes through too).

Target: command -> bytes p99 <= 20 ms.
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
from estop import raw_writes, setpoint_stops
from realtime_pty import pick_zone

from controller.limits import DEFAULT_LIMITS, narrow
from firmware_profiles import load_profile

TARGET_P99_S = 0.020
NODE = "b"
WAIT_S = 3.0  # a frame not decoded by then is lost (inf), not a fast trial


@dataclass
class Results:
    """Seconds per trial, by path."""

    pause: list[float] = field(default_factory=list)
    down: list[float] = field(default_factory=list)
    up: list[float] = field(default_factory=list)
    reply: list[float] = field(default_factory=list)  # pause publish -> its reply received
    bare: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    setzero: list[float] = field(default_factory=list)
    load: list[str] = field(default_factory=list)


async def measure(trials: int, rng: random.Random, workdir: Path) -> Results:
    """Run the node on one pty cushion and time `trials` commands of each kind."""
    profile = load_profile(mqtt_rig.PROFILE)
    res = Results()
    env = mqtt_rig.scratch_env(workdir)
    with mqtt_rig.broker(workdir) as b:
        async with mqtt_rig.sims(1, profile) as (sim,), mqtt_rig.bench_client(b) as mq:
            node = await mqtt_rig.start_node(NODE, [sim], b.url, env, workdir)
            try:
                await mq.online([NODE])
                await mq.command(NODE, sim.name, {"command": "start",
                                                  "program": mqtt_rig.PROGRAM})
                res.load.append(mqtt_rig.load_line())
                await intensity_trials(mq, sim, trials, rng, res)
                await pause_trials(mq, sim, trials, rng, res)
                res.load.append(mqtt_rig.load_line())
            finally:
                await node.stop()
    limits = narrow(DEFAULT_LIMITS, {"ramp_per_s": mqtt_rig.RAMP_PER_S}, allow_raise=True)
    res.raw = [t.decoded for t in await raw_writes(profile, limits, trials, rng)]
    zone = pick_zone(profile, limits)
    res.setzero = [t.decoded for t in await setpoint_stops(profile, limits, zone, trials, rng)]
    return res


async def intensity_trials(
    mq: mqtt_rig.BenchClient, sim: mqtt_rig.Sim, trials: int, rng: random.Random, res: Results
) -> None:
    """Scale to 10 % (all off) and back to 100 % (on again), timing both."""
    loop = asyncio.get_running_loop()
    for _ in range(trials):
        if not sim.on():  # the plan may rest between strokes: wait until it plays
            await sim.first(loop.time(), mqtt_rig.any_on).wait(10.0)
        res.bare.append(await mq.round_trip())
        waiter = sim.first(loop.time(), mqtt_rig.all_off)
        t0, reply = await mq.send(NODE, sim.name, {"command": "intensity", "percent": 10})
        res.down.append(await waiter.wait(WAIT_S) - t0)
        await reply
        waiter = sim.first(loop.time(), mqtt_rig.any_on)
        t0, reply = await mq.send(NODE, sim.name, {"command": "intensity", "percent": 100})
        res.up.append(await waiter.wait(WAIT_S) - t0)
        await reply
        await asyncio.sleep(rng.uniform(0.05, 0.2))


async def pause_trials(
    mq: mqtt_rig.BenchClient, sim: mqtt_rig.Sim, trials: int, rng: random.Random, res: Results
) -> None:
    """Pause (timed to the Stop frame and to the reply), then resume, `trials` times."""
    loop = asyncio.get_running_loop()
    for _ in range(trials):
        res.bare.append(await mq.round_trip())
        waiter = sim.first(loop.time(), mqtt_rig.is_stop)
        t0, reply = await mq.send(NODE, sim.name, {"command": "pause"})
        res.pause.append(await waiter.wait(WAIT_S) - t0)
        res.reply.append((await reply).t - t0)
        await mq.command(NODE, sim.name, {"command": "resume"})
        await asyncio.sleep(rng.uniform(0.1, 0.3))


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=150, help="trials per command kind")
    parser.add_argument("--quick", action="store_true", help="30 trials per command kind")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    trials = 30 if args.quick else args.trials
    print(benchlib.machine())
    with tempfile.TemporaryDirectory(prefix="cushion-bench-") as tmp:
        res = asyncio.run(measure(trials, random.Random(args.seed), Path(tmp)))
    print(f"{mqtt_rig.PROFILE}, {mqtt_rig.PROGRAM}, {trials} trials per command; "
          f"{'; '.join(res.load)} (start; end)\n")
    rows = []
    for label, values in (
        ("pause -> Stop frame", res.pause),
        ("pause -> its reply", res.reply),
        ("intensity 10% -> all off", res.down),
        ("intensity 100% -> on again", res.up),
        ("bare publish -> receive", res.bare),
        ("raw pty write (no MQTT)", res.raw),
        ("in-process set(zeros)", res.setzero),
    ):
        lost = sum(1 for v in values if v == float("inf"))
        rows.append([label, len(values), lost, *benchlib.summary_ms(values)])
    print(benchlib.table(["path", "n", "lost", "p50 ms", "p99 ms", "max ms"], rows))
    for label, values in (("pause", res.pause), ("intensity down", res.down)):
        _, p99, _ = benchlib.summary_ms(values)
        met = p99 <= TARGET_P99_S * 1e3
        print(f"\n{label}: p99 {p99:.2f} ms (target <= {TARGET_P99_S * 1e3:g} ms): "
              f"{'met' if met else 'MISSED'}", end="")
    print()


if __name__ == "__main__":
    main()

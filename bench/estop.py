"""Emergency-stop latency over a real pty, beside a stop through the setpoint path and raw I/O.

Run: .venv/bin/python bench/estop.py [--trials N] [--quick] [--profile NAME] [--idle]

Everything runs on a normal asyncio loop: `Device` -> `SerialTransport` -> pty -> `PtyLink`
-> `SimulatedCushion`, whose recorder stamps each decoded command with the loop's time.
Latency = (time the simulator decoded the frame) - (loop time just before the call).

  emergency_stop  a `Session` plays the bench timeline (a fresh session, device and pty per
                  trial, since an emergency stop is final); after a random 50-150 ms another
                  task awaits `session.emergency_stop()`; until the Stop frame is decoded.
  set(zeros)      baseline: with a 10 Hz stream of `device.set()` updates alternating a zone
                  (outputs on), at a random moment the stream stops and `device.set(all
                  zeros)` is called; until the frame turning that zone off is decoded. This
                  goes through the writer task and its update-rate limit.
  raw write       baseline: `SerialTransport.write(stop frame)` (pyserial-asyncio-fast
                  write + drain), no device facade; until the simulator decoded it: the
                  pty's one-way latency in this loop.

One spinning process per other core runs for the whole measurement unless --idle.
Target: emergency_stop p99 <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
from collections.abc import Sequence
from typing import NamedTuple

import benchlib
from ptyrig import Rig, pty_rig, zone_level
from realtime_pty import HIGH, LOW, RAMP_PER_S, STEP_S, build_timeline, pick_zone

from controller.limits import DEFAULT_LIMITS, SafetyLimits, narrow
from controller.session import Session
from controller.timeline import Setpoint, Timeline
from firmware_profiles import Profile, load_profile
from firmware_profiles.commands import Stop

TARGET_P99_S = 0.002


class Trial(NamedTuple):
    """One stop: from the call to the frame decoded by the simulator, and to its write (s)."""

    decoded: float
    written: float


SETTLE_S = 0.02  # after a stop, before looking at the recorder: the frame is long read by then


async def emergency_stops(
    profile: Profile, limits: SafetyLimits, timeline: Timeline, trials: int, rng: random.Random
) -> list[Trial]:
    """Return the latency (s) of `session.emergency_stop()` to the decoded Stop, per trial."""
    out = []
    loop = asyncio.get_running_loop()
    for _ in range(trials):
        async with pty_rig(profile, limits) as rig:
            session = Session(timeline, rig.device, emit=rig.events.append)
            running = asyncio.create_task(session.run())
            await asyncio.sleep(rng.uniform(0.05, 0.15))
            mark = rig.mark()
            called = loop.time()
            await session.emergency_stop("bench")
            await running
            await asyncio.sleep(SETTLE_S)
            out.append(_first_after(rig, mark, called, lambda c: isinstance(c, Stop)))
    return out


async def setpoint_stops(
    profile: Profile, limits: SafetyLimits, zone: int, trials: int, rng: random.Random
) -> list[Trial]:
    """Return the latency (s) of `device.set(all zeros)` to the frame turning the zone off."""
    n = len(profile.zones)

    def levels(value: float) -> Setpoint:
        values = [0.0] * n
        values[zone] = value
        return Setpoint(tuple(values))

    async def stream() -> None:
        # Like a session's pattern: a new value every STEP_S on absolute deadlines.
        start = loop.time()
        k = 0
        while True:
            device.set(levels(LOW if k % 2 else HIGH))
            k += 1
            await asyncio.sleep(max(0.0, start + k * STEP_S - loop.time()))

    out = []
    loop = asyncio.get_running_loop()
    async with pty_rig(profile, limits) as rig:
        device = rig.device
        device.origin = loop.time()
        device.resume()
        serving = asyncio.create_task(device.serve())
        try:
            device.set(levels(HIGH))
            await asyncio.sleep(HIGH / RAMP_PER_S + 0.5)  # the ramp rule lifts the ceiling
            for _ in range(trials):
                streaming = asyncio.create_task(stream())
                await asyncio.sleep(rng.uniform(0.1, 0.2))
                streaming.cancel()
                mark = rig.mark()
                called = loop.time()
                device.set(Setpoint((0.0,) * n))
                await asyncio.sleep(SETTLE_S + 1.1 / profile.limits.max_update_hz)
                out.append(_first_after(rig, mark, called, lambda c: _turns_off(c, zone)))
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
    return out


async def raw_writes(
    profile: Profile, limits: SafetyLimits, trials: int, rng: random.Random
) -> list[Trial]:
    """Return the one-way latency (s) of a Stop frame written straight to the transport."""
    out = []
    loop = asyncio.get_running_loop()
    async with pty_rig(profile, limits) as rig:
        frame = rig.device.codec.encode(Stop())
        await asyncio.sleep(0.05)
        for _ in range(trials):
            await asyncio.sleep(rng.uniform(0.002, 0.01))
            mark = rig.mark()
            called = loop.time()
            await rig.transport._write(frame)  # the raw baseline: below the facade on purpose
            await asyncio.sleep(SETTLE_S / 4)
            out.append(_first_after(rig, mark, called, lambda c: isinstance(c, Stop)))
    return out


def _turns_off(command: object, zone: int) -> bool:
    if isinstance(command, Stop):
        return True
    return zone_level(command, zone) == 0  # type: ignore[arg-type]


def _first_after(rig: Rig, mark: int, called: float, match: object) -> Trial:
    """Return the delays from `called` to the first matching command decoded after `mark`."""
    for t, command in rig.received(mark):
        if t >= called and match(command):  # type: ignore[operator]
            return Trial(t - called, rig.transport.written_before(t) - called)
    return Trial(float("inf"), float("inf"))  # never arrived: an outlier, not a fast trial


def main(argv: Sequence[str] | None = None) -> None:
    """Run the three measurements and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per measurement")
    parser.add_argument("--quick", action="store_true", help="50 trials per measurement")
    parser.add_argument("--profile", default="lp4-ascii")
    parser.add_argument("--idle", action="store_true", help="no busy process on the other core")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    trials = 50 if args.quick else args.trials
    profile = load_profile(args.profile)
    limits = narrow(DEFAULT_LIMITS, {"ramp_per_s": RAMP_PER_S}, allow_raise=True)
    zone = pick_zone(profile, limits)
    timeline, _ = build_timeline(profile, zone, 60.0)
    rng = random.Random(args.seed)
    busy = 0 if args.idle else benchlib.other_cores()
    print(benchlib.machine())
    print(f"{profile.name}, {trials} trials each, {busy} busy process(es)\n")
    with benchlib.busy_cores(busy):
        results = [
            (
                "emergency_stop",
                asyncio.run(emergency_stops(profile, limits, timeline, trials, rng)),
            ),
            ("set(zeros)", asyncio.run(setpoint_stops(profile, limits, zone, trials, rng))),
            ("raw write", asyncio.run(raw_writes(profile, limits, trials, rng))),
        ]
    rows = []
    for label, trials_ in results:
        median, p99, worst = benchlib.summary_ms([t.decoded for t in trials_])
        w_median, w_p99, w_worst = benchlib.summary_ms([t.written for t in trials_])
        lost = sum(1 for t in trials_ if t.decoded == float("inf"))
        rows.append([label, len(trials_), lost, median, p99, worst, w_median, w_p99, w_worst])
    headers = ["path", "trials", "lost", "p50 ms", "p99 ms", "max ms", "write p50", "p99", "max"]
    print(benchlib.table(headers, rows))
    print(
        "\np50/p99/max: call -> frame decoded by the simulator; write p50/p99/max: call -> "
        "the transport's write began."
    )
    _, p99, _ = benchlib.summary_ms([t.decoded for t in results[0][1]])
    met = p99 <= TARGET_P99_S * 1e3
    print(
        f"\nemergency_stop p99 {p99:.3f} ms (target <= {TARGET_P99_S * 1e3:g} ms): "
        f"{'met' if met else 'MISSED'}"
    )


if __name__ == "__main__":
    main()

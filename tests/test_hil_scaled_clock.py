"""The simulator on a sped-up clock (`cushion run --speed N`): fair to a paced controller,
still strict with a fast one, and a stalled host does not look like a silent controller."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import pytest

from firmware_profiles.commands import Reply, SetZone
from hil.firmware import NAK_TOO_FAST, Firmware
from hil.recorder import Recorder
from hil.spec import FirmwareSpec
from hil.vtime import STALL_S, ScaledTimeLoop, VirtualTimeLoop

SPEC = FirmwareSpec(zone_count=1, control="absolute", max_level=10, max_update_hz=20.0, naks=True)
SPEED = 26.0  # the README's first command
TOO_FAST = Reply("nak", {"code": NAK_TOO_FAST})


class SpedUpVirtualLoop(VirtualTimeLoop):
    """Virtual time (exact, deterministic) that tells the firmware it stands for 26x."""

    speed = SPEED


def play(arrivals: list[float]) -> list[Reply | None]:
    """Hand the firmware one SetZone at each loop time in ``arrivals``; return its replies."""

    async def main() -> list[Reply | None]:
        loop = asyncio.get_running_loop()
        fw = Firmware(SPEC, Recorder(1, 0))
        out = []
        for k, t in enumerate(arrivals):
            await asyncio.sleep(max(0.0, t - loop.time()))
            out.append(fw.handle(SetZone(0, 1 + k % 5)))
        return out

    with asyncio.Runner(loop_factory=SpedUpVirtualLoop) as runner:
        return runner.run(main())


def test_a_paced_controller_passes_however_the_wire_bunches_its_frames() -> None:
    # The controller paces at 1.1/max_update_hz + 2 ms real jitter x speed (controller.device);
    # the pty and the loaded host delay each frame by up to 12 ms real (x speed on the loop
    # clock): frames arrive bunched, some pairs closer than the interval.
    rng = random.Random(7)
    pace = 1.1 / 20 + 0.002 * SPEED
    arrivals = sorted(k * pace + rng.uniform(0.0, 0.012 * SPEED) for k in range(400))
    replies = play(arrivals)
    assert TOO_FAST not in replies
    assert min(b - a for a, b in itertools.pairwise(arrivals)) < 0.9 / 20


def test_a_controller_sending_twice_the_rate_is_refused_on_a_sped_up_clock() -> None:
    # The allowance at 26x (12 ms real: 0.31 s) is longer than the interval (45 ms): a check
    # of each gap alone would pass any rate. The booked slots refuse a steady over-speed
    # once the allowance is used up (a burst of a few frames), and for good.
    arrivals = [k * 0.025 for k in range(400)]  # 40 Hz on a 20 Hz cushion, 10 s
    replies = play(arrivals)
    assert TOO_FAST in replies[:20]
    late = [t for t, r in zip(arrivals, replies, strict=True) if r != TOO_FAST and t >= 5.0]
    rate = (len(late) - 1) / (late[-1] - late[0])
    assert rate <= 20 / 0.9 + 0.5  # the long-run rate is the cushion's, 10 % slack
    assert sum(r == TOO_FAST for r in replies) >= 150


def test_back_to_back_frames_are_still_refused_at_real_speed() -> None:
    async def main() -> list[Reply | None]:
        fw = Firmware(SPEC, Recorder(1, 0))
        return [fw.handle(SetZone(0, 1)), fw.handle(SetZone(0, 2))]

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        assert runner.run(main())[1] == TOO_FAST


def test_a_stalled_host_passes_in_real_time_on_the_scaled_clock() -> None:
    async def main() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, ScaledTimeLoop)
        t = loop.time()
        time.sleep(0.1)  # noqa: ASYNC251 - the host stalls for 100 ms (not scheduled, GIL, slow callback)
        stalled = loop.time() - t
        t, real = loop.time(), time.monotonic()
        await asyncio.sleep(1.3)  # a wait the loop asked for runs at speed
        return stalled, loop.time() - t, time.monotonic() - real

    with asyncio.Runner(loop_factory=lambda: ScaledTimeLoop(SPEED)) as runner:
        stalled, waited, real = runner.run(main())
    # 100 ms of stall is 100 ms on the loop clock (plus STALL_S at speed), not 2.6 s.
    assert 0.1 <= stalled <= 0.1 + STALL_S * SPEED + 0.05
    assert waited == pytest.approx(1.3, abs=0.2)
    assert real < 0.5

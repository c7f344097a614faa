"""The shortcuts the virtual-clock speed work took keep their promises (issue 6).

The collector is held only while a session plays and given back whatever way it ends; the
in-process link's hand-over to a receiver delivers what `read` would have, ends a waiting
`read` with the receiver's error, and drops what came before a close, as `read` does.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from controller.device import Device
from controller.limits import DEFAULT_LIMITS
from controller.session import EXIT_DEVICE, Session
from controller.timeline import Setpoint, Timeline
from controller.transports.base import Endpoint
from controller.transports.sim import SimTransport
from firmware_profiles import Codec, load_profile
from firmware_profiles.commands import Keepalive, Reply, Stop
from hil.cushion import SimulatedCushion
from hil.links import InProcessLink
from hil.vtime import run_virtual
from tests.support import simulate


def _timeline(seconds: float, level: float) -> Timeline:
    steps = int(seconds * 10)
    return Timeline(
        zones=tuple(f"z{z}" for z in range(6)),
        times=[i / 10 for i in range(steps)],
        setpoints=[Setpoint((level,) * 6)] * steps,
        duration_s=seconds,
    )


@pytest.mark.parametrize("fail", [False, True])
def test_the_collector_is_held_while_a_session_plays_and_given_back_after(fail: bool) -> None:
    profile = load_profile("vb6-binary")
    cushion = SimulatedCushion(profile)
    before = gc.get_threshold()
    seen: list[tuple[tuple[int, int, int], int]] = []

    async def main() -> int:
        transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
        async with Device(transport, profile, DEFAULT_LIMITS, emit=lambda e: None) as device:
            session = Session(_timeline(3.0, 0.3), device, emit=lambda e: None)

            async def look() -> None:
                await asyncio.sleep(1.0)
                seen.append((gc.get_threshold(), gc.get_freeze_count()))
                if fail:
                    cushion.faults.silent = True  # the session ends with a device error

            watcher = asyncio.create_task(look())
            result = await session.run()
            await watcher
            return result.exit_code

    code = run_virtual(main())
    assert code == (EXIT_DEVICE if fail else 0)
    ((during, frozen),) = seen
    assert during[:2] == before[:2] and during[2] > 10**6 and frozen > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_overlapping_sessions_hold_the_collector_until_the_last_one_ends() -> None:
    """A node plays several cushions: the first to end must not give the collector back."""
    profile = load_profile("vb6-binary")
    before = gc.get_threshold()
    seen: list[tuple[float, int]] = []

    async def one(seconds: float, delay: float) -> None:
        await asyncio.sleep(delay)
        cushion = SimulatedCushion(profile)
        transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
        async with Device(transport, profile, DEFAULT_LIMITS, emit=lambda e: None) as device:
            await Session(_timeline(seconds, 0.3), device, emit=lambda e: None).run()

    async def look(at: float) -> None:
        await asyncio.sleep(at)
        seen.append((at, gc.get_threshold()[2]))

    async def main() -> None:
        # A plays 0-3 s, B 1-7 s: at 5 s only B plays, and it still holds the collector.
        await asyncio.gather(one(3.0, 0.0), one(6.0, 1.0), look(2.0), look(5.0))

    run_virtual(main())
    assert [at for at, third in seen if third > 10**6] == [2.0, 5.0]
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_session_inside_another_leaves_the_collector_to_the_outer_one() -> None:
    outer = gc.get_threshold()
    gc.freeze()  # as a session already playing in this process has done
    try:
        run = simulate("lumbar-short", "remote-stepper")
        assert run.result.exit_code == 0
        assert gc.get_threshold() == outer and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def _link() -> tuple[InProcessLink, SimulatedCushion, Codec]:
    profile = load_profile("vb6-binary")
    cushion = SimulatedCushion(profile)
    return InProcessLink(cushion), cushion, Codec(profile)


def test_a_receiver_gets_the_replies_a_waiting_read_would_have_returned() -> None:
    async def main() -> tuple[list[bytes], bytes, bool]:
        link, _, codec = _link()
        got: list[bytes] = []
        link.hand_to(got.append)
        reader = asyncio.create_task(link.read())
        await asyncio.sleep(0)  # the reader waits now
        link.send(codec.encode(Keepalive()))
        link.send(codec.encode(Stop()))
        assert got == []  # not within the writer's turn: on the next one, as a reader would
        await asyncio.sleep(0)
        waiting = not reader.done()
        link.hand_to(None)
        link.send(codec.encode(Keepalive()))
        late = await reader  # with no receiver, the read returns the bytes itself
        return got, late, waiting

    got, late, waiting = run_virtual(main())
    ack = Codec(load_profile("vb6-binary")).encode_reply(Reply("ack", {}))
    assert got == [ack + ack] and waiting and late == ack


def test_a_receiver_error_ends_the_waiting_read_and_replies_go_to_read_again() -> None:
    class Refused(Exception):
        pass

    def refuse(data: bytes) -> None:
        raise Refused(data.hex())

    async def main() -> tuple[BaseException | None, bytes]:
        link, _, codec = _link()
        link.hand_to(refuse)
        reader = asyncio.create_task(link.read())
        await asyncio.sleep(0)
        link.send(codec.encode(Keepalive()))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        error = reader.exception() if reader.done() else None
        link.send(codec.encode(Keepalive()))
        return error, await link.read()

    error, after = run_virtual(main())
    assert isinstance(error, Refused)
    assert after  # the receiver was dropped: the next reply waits for read


def test_replies_not_yet_handed_over_when_the_link_closes_are_lost_as_read_loses_them() -> None:
    async def main() -> tuple[list[bytes], BaseException | None]:
        link, _, codec = _link()
        got: list[bytes] = []
        link.hand_to(got.append)
        reader = asyncio.create_task(link.read())
        await asyncio.sleep(0)
        link.send(codec.encode(Keepalive()))
        link.disconnect()  # in the same turn as the reply
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return got, reader.exception() if reader.done() else None

    got, error = run_virtual(main())
    assert got == [] and isinstance(error, ConnectionError)

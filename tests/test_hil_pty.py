"""The simulated cushion behind a real pseudo-terminal, opened with pyserial like a USB port.

Real clock (`asyncio.run`): virtual time would race the pty. Waits are bounded polls, never
timing assertions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import serial
import serial_asyncio_fast

from firmware_profiles import Codec
from firmware_profiles.commands import Query, Reply, SetZone
from hil.cushion import SimulatedCushion
from hil.ptylink import PtyLink
from hil.pytest_plugin import PtyCushion, build_cushion
from hil.serve import run_standalone

pytestmark = pytest.mark.realtime

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def until(condition: Callable[[], bool], what: str, limit_s: float = 3.0) -> None:
    """Poll ``condition`` every 10 ms; fail after ``limit_s`` (a hang guard, not a timing test)."""
    for _ in range(int(limit_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


async def open_port(port: str) -> Stream:
    return await serial_asyncio_fast.open_serial_connection(url=port, baudrate=9600)


async def exchange(stream: Stream, codec: Codec, frame: bytes, count: int) -> list[Reply]:
    """Write a frame, then read until ``count`` replies have parsed."""
    reader, writer = stream
    writer.write(frame)
    await writer.drain()
    parser = codec.reply_parser()
    replies: list[Reply] = []
    while len(replies) < count:
        data = await asyncio.wait_for(reader.read(256), 3.0)
        for item in parser.feed(data):
            assert isinstance(item, Reply), item
            replies.append(item)
    return replies


async def hang_up(stream: Stream) -> None:
    _, writer = stream
    writer.close()
    await writer.wait_closed()


def test_frames_and_replies_over_a_pty(pty_cushion: PtyCushion) -> None:
    async def main() -> None:
        async with pty_cushion("lp4-ascii") as (cushion, port):
            assert port.startswith("/dev/")
            codec = Codec(cushion.profile)
            stream = await open_port(port)
            frames = codec.encode(SetZone(2, 6)) + codec.encode(Query())
            ack, status = await exchange(stream, codec, frames, 2)
            assert ack == Reply("ack")
            assert status.kind == "status" and status.fields["level2"] == 6
            assert cushion.state.commanded[2] == 6
            await hang_up(stream)

    asyncio.run(main())


def test_controller_hang_up_is_noticed_and_the_port_can_be_reopened() -> None:
    async def main() -> None:
        cushion = build_cushion("vb6-binary")
        codec = Codec(cushion.profile)
        async with PtyLink(cushion) as link:
            for round_ in range(2):
                stream = await open_port(link.port)
                (ack,) = await exchange(stream, codec, codec.encode(SetZone(0, 10 + round_)), 1)
                assert ack == Reply("ack") and link.connected
                await hang_up(stream)
                await until(lambda: not link.connected, "the hang-up")
            links = [e.detail for e in cushion.recorder.of("link")]
            assert links == ["connected", "hangup", "connected", "hangup"]
        assert cushion.recorder.last("link") is not None
        assert [e.detail for e in cushion.recorder.of("link")][-1] == "disconnected"

    asyncio.run(main())


def test_device_disconnect_fails_the_controllers_read() -> None:
    async def main() -> None:
        cushion = build_cushion("remote-stepper")
        async with PtyLink(cushion) as link:
            reader, writer = await open_port(link.port)
            await until(lambda: link.connected, "the controller to be seen")
            link.disconnect()
            with pytest.raises(serial.SerialException):
                await asyncio.wait_for(reader.read(16), 3.0)
            writer.close()

    asyncio.run(main())


def test_replies_are_dropped_while_nobody_listens() -> None:
    async def main() -> None:
        cushion = build_cushion("lp4-ascii")
        async with PtyLink(cushion) as link:
            assert not link.connected
            # the cushion answers a frame that came from elsewhere (no controller has the port)
            cushion.feed(Codec(cushion.profile).encode(Query()))
            assert cushion.recorder.count("reply") == 1
            stream = await open_port(link.port)
            codec = Codec(cushion.profile)
            (ack,) = await exchange(stream, codec, codec.encode(SetZone(0, 1)), 1)
            assert ack == Reply("ack")  # the stale status never reached the controller
            await hang_up(stream)

    asyncio.run(main())


def test_run_standalone_serves_until_stopped() -> None:
    async def main() -> SimulatedCushion:
        stop = asyncio.Event()
        ports: list[str] = []
        server = asyncio.create_task(
            run_standalone("lp4-ascii", stop_event=stop, on_ready=ports.append)
        )
        await until(lambda: bool(ports), "the port")
        codec = Codec(build_cushion("lp4-ascii").profile)
        stream = await open_port(ports[0])
        (ack,) = await exchange(stream, codec, codec.encode(SetZone(1, 3)), 1)
        assert ack == Reply("ack")
        await hang_up(stream)
        stop.set()
        return await asyncio.wait_for(server, 3.0)

    cushion = asyncio.run(main())
    assert cushion.recorder.commands() == [SetZone(1, 3, duration_s=1.5)]


def test_run_standalone_closes_the_pty_when_cancelled() -> None:
    async def main() -> None:
        ports: list[str] = []
        server = asyncio.create_task(run_standalone("vb6-binary", on_ready=ports.append))
        await until(lambda: bool(ports), "the port")
        reader, writer = await open_port(ports[0])
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
        with pytest.raises(serial.SerialException):
            await asyncio.wait_for(reader.read(16), 3.0)
        writer.close()

    asyncio.run(main())


def test_baud_throttled_replies_arrive_whole_and_in_order() -> None:
    async def main() -> None:
        cushion = build_cushion("lp4-ascii")
        codec = Codec(cushion.profile)
        async with PtyLink(cushion, baudrate=cushion.profile.serial.baudrate) as link:  # type: ignore[union-attr]
            stream = await open_port(link.port)
            frames = b"".join(codec.encode(SetZone(z, z + 1)) for z in range(4))
            replies = await exchange(stream, codec, frames + codec.encode(Query()), 5)
            assert replies[:4] == [Reply("ack")] * 4
            assert replies[4].fields["level3"] == 4
            await hang_up(stream)

    asyncio.run(main())

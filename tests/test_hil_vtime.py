"""The virtual-time loop: timers fire in order at virtual times; real fds still work."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hil.vtime import VirtualTimeLoop, run_virtual


def test_half_an_hour_of_sleeps_is_virtual() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(1800):
            await asyncio.sleep(1.0)
        return start, loop.time()

    start, end = run_virtual(main())
    assert start == 0.0
    assert end == pytest.approx(1800.0)


def test_timers_fire_in_deadline_order_at_their_times() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float]] = []
        for name, when in (("c", 3.0), ("a", 1.0), ("b", 2.5)):
            loop.call_at(when, lambda n=name: fired.append((n, loop.time())))
        await asyncio.sleep(5.0)
        return fired

    assert run_virtual(main()) == [("a", 1.0), ("b", 2.5), ("c", 3.0)]


def test_wait_for_times_out_in_virtual_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), 600.0)
        return loop.time()

    assert run_virtual(main(), start_s=100.0) == pytest.approx(700.0)


def test_real_fds_are_still_served() -> None:
    async def main() -> bytes:
        a, b = socket.socketpair()
        with a, b:
            reader, writer = await asyncio.open_connection(sock=a)
            b.sendall(b"ping")
            data = await reader.readexactly(4)
            writer.close()
            await writer.wait_closed()
            return data

    assert run_virtual(main()) == b"ping"


def test_advance_moves_time_forward_only() -> None:
    loop = VirtualTimeLoop()
    try:
        loop.advance(2.0)
        assert loop.time() == 2.0
        with pytest.raises(ValueError):
            loop.advance(-1.0)
    finally:
        loop.close()

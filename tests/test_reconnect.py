"""Link loss and reconnection: pause, all-off first, ramp from zero, resume only when asked."""

from __future__ import annotations

import asyncio

import pytest

from controller.events import LinkDown, LinkUp, Paused, Resumed, SessionEnded
from controller.limits import DEFAULT_LIMITS
from controller.session import Session
from controller.transports.sim import SimTransport
from firmware_profiles.commands import Stop
from hil.cushion import SimulatedCushion
from tests.invariants import assert_wire_respects_envelope, wire_points
from tests.support import advance, simulate


def _pull_cable(session: Session) -> SimTransport:
    transport = session.device.transport
    assert isinstance(transport, SimTransport) and transport.link is not None
    transport.link.disconnect()
    return transport


def _commands_after(cushion: SimulatedCushion, t: float) -> list[object]:
    """Return the commands received on the first link that connected at or after `t`."""
    events = list(cushion.recorder)
    start = next(
        i for i, e in enumerate(events) if e.kind == "link" and e.detail == "connected" and e.t >= t
    )
    return [e.detail for e in events[start:] if e.kind == "command"]


def test_auto_resume_sends_all_off_first_and_ramps_from_zero() -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(600)
        assert max(cushion.state.commanded) > 40
        _pull_cable(session)

    run = simulate("lumbar-classic", "vb6-binary", during=during, reconnect=True, auto_resume=True)
    assert run.result.exit_code == 0
    down, up = run.of(LinkDown)[0], run.of(LinkUp)[0]
    assert down.t_s == pytest.approx(600) and up.t_s - down.t_s < 2  # backoff, jitter, no storm
    assert run.of(Paused)[0].t_s == pytest.approx(600) and run.of(Resumed)[0].t_s >= up.t_s
    assert isinstance(_commands_after(run.cushion, up.t_s)[0], Stop)  # all-off goes first
    after = [(t, v) for t, v in wire_points(run.cushion.recorder, 255) if t > up.t_s]
    assert 0 < after[0][1] <= 0.01  # ramping again from zero ...
    assert after[0][0] - up.t_s < 1.0  # ... within a second of the link coming back
    assert_wire_respects_envelope(run, DEFAULT_LIMITS)
    ended = run.of(SessionEnded)[0]
    assert ended.outcome == "done"


def test_without_auto_resume_the_session_waits_for_the_user() -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(600)
        _pull_cable(session)
        await advance(120)
        assert session.paused and not any(cushion.state.commanded)  # link is back, still off
        session.resume()

    run = simulate("lumbar-classic", "vb6-binary", during=during, reconnect=True)
    assert run.result.exit_code == 0
    up = run.of(LinkUp)[0]
    resumed = run.of(Resumed)[0]
    assert resumed.t_s >= 720 - 1e-6 > up.t_s
    levels = [v for t, v in wire_points(run.cushion.recorder, 255) if up.t_s <= t < 720]
    assert not any(levels)  # no stale intensity after the reconnect
    assert_wire_respects_envelope(run, DEFAULT_LIMITS)


def test_a_stop_asked_for_while_disconnected_is_sent_first_thing_on_reconnect() -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(600)
        transport = _pull_cable(session)
        transport.in_range = False  # the cushion stays out of reach for a while
        await asyncio.sleep(0.001)
        session.stop("user pressed stop")
        await advance(3)
        transport.in_range = True

    run = simulate("lumbar-classic", "vb6-binary", during=during, reconnect=True)
    assert run.result.outcome == "stopped"
    rec = run.cushion.recorder
    reconnected = [e.t for e in rec.of("link") if e.detail == "connected"][-1]
    assert reconnected > 600
    assert [type(c) for c in _commands_after(run.cushion, reconnected)] == [Stop]
    rec.assert_all_off_at_end()


def test_a_serial_style_link_loss_is_final_without_reconnect() -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(300)
        _pull_cable(session)

    run = simulate("lumbar-classic", "vb6-binary", during=during)
    assert run.result.exit_code == 3 and not run.of(LinkUp)


def test_ble_reconnect_rescans_for_a_cushion_that_left_and_came_back() -> None:
    """Over the simulated radio: the cushion is switched off (the host forgets it) and on.

    A reconnect with the `BLEDevice` kept from before would fail forever, as on BlueZ; each
    attempt scans afresh instead, and the one after the cushion is back connects.
    """
    from controller.device import Device
    from controller.events import Event
    from controller.runner import plan
    from controller.transports.base import Endpoint
    from controller.transports.ble import BleTransport
    from firmware_profiles import load_profile
    from hil.ble import SimBleakClient, SimBleakScanner, SimBleWorld
    from hil.vtime import run_virtual
    from protocols import load_program
    from tests.support import Run

    profile = load_profile("vb6-binary")
    program = load_program("lumbar-short")
    sim = SimulatedCushion(profile)
    events: list[Event] = []
    scans: dict[str, int] = {}

    async def main() -> object:
        async with SimBleWorld() as world:
            peripheral = await world.add_cushion(sim)
            transport = BleTransport(
                Endpoint("ble", peripheral.address, {"timeout": "1"}),
                profile,
                scanner_backend=SimBleakScanner,
                client_backend=SimBleakClient,
                backend_kwargs={"world": world},
            )
            async with (
                asyncio.timeout(3600),  # virtual seconds: a reconnect that never comes fails
                Device(
                    transport, profile, DEFAULT_LIMITS, emit=events.append, reconnect=True
                ) as device,
            ):
                session = Session(
                    plan(program, profile, DEFAULT_LIMITS),
                    device,
                    emit=events.append,
                    auto_resume=True,
                )
                task = asyncio.create_task(session.run())
                await advance(300)
                scans["before"] = world.scans
                kept = transport.device
                await world.leave(peripheral)  # switched off: BlueZ would forget it too
                await advance(4)
                scans["away"] = world.scans
                await world.come_back(peripheral)
                result = await task
                scans["after"] = world.scans
                fresh = transport.device
                assert kept is not None and fresh is not None and fresh is not kept
                # The device cache entry it connected with is the one made after the return.
                assert world.knows(fresh.address, fresh.details.generation)
                assert not world.knows(kept.address, kept.details.generation)
                return result

    result = run_virtual(main())
    run = Run(result, events, sim, profile, program)  # type: ignore[arg-type]
    assert run.result.exit_code == 0
    assert scans["before"] == 1  # the first open
    assert scans["away"] > scans["before"]  # every attempt while away scanned
    assert scans["after"] >= scans["away"]  # the reconnect's scan may be one already running
    up = run.of(LinkUp)[0]
    assert up.t_s > run.of(LinkDown)[0].t_s
    reconnected = [e.t for e in sim.recorder.of("link") if e.detail == "connected"][-1]
    assert isinstance(_commands_after(sim, reconnected)[0], Stop)  # all-off first
    assert_wire_respects_envelope(run, DEFAULT_LIMITS)
    assert run.of(SessionEnded)[0].outcome == "done"

"""The reproductions of issue 6 on the device facade, each on the simulator's recorded wire."""

from __future__ import annotations

import asyncio
import math

import pytest

from controller.device import Device
from controller.errors import DeviceError
from controller.events import AllOff, DeviceReset, Event, Fault, SessionEnded, SessionStarted
from controller.limits import DEFAULT_LIMITS
from controller.runner import RunOptions, run_program
from controller.session import EXIT_SAFETY, Session, SessionResult
from controller.timeline import Setpoint
from controller.transports.base import Endpoint
from controller.transports.serial import SerialTransport
from controller.transports.sim import SimTransport
from firmware_profiles import load_profile
from firmware_profiles.commands import SetAll, SetZone, Stop
from hil.cushion import SimulatedCushion
from hil.faults import FaultSchedule, apply_schedule
from hil.ptylink import PtyLink
from hil.vtime import run_virtual
from protocols import load_program
from tests.invariants import Ramp, wire_points
from tests.support import advance, simulate


def _device(profile_name: str, events: list[Event]) -> tuple[Device, SimulatedCushion]:
    profile = load_profile(profile_name)
    cushion = SimulatedCushion(profile)
    transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
    return Device(transport, profile, DEFAULT_LIMITS, emit=events.append), cushion


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -0.5])
@pytest.mark.parametrize("profile", ["lp4-ascii", "vb6-binary"])
def test_a_non_finite_or_negative_setpoint_means_off(profile: str, bad: float) -> None:
    events: list[Event] = []
    device, cushion = _device(profile, events)

    async def main() -> None:
        async with device:
            device.resume()
            n = len(device.profile.zones)
            device.set(Setpoint((bad,) * n))
            await advance(30)  # the ceiling would have climbed to 60 % by now
            assert not any(cushion.state.commanded)
            device.set(Setpoint((0.2,) * n))
            await advance(30)
            assert any(cushion.state.commanded)  # a finite value still plays

    run_virtual(main())
    sets = [c for c in cushion.recorder.commands() if isinstance(c, SetZone | SetAll)]
    assert sets  # the device was driven, and never to its cap by the bad value
    assert max(cushion.recorder.levels(0), key=lambda p: p[1])[1] < device.profile.intensity.max


def test_all_off_is_reported_unsent_when_the_link_is_gone() -> None:
    events: list[Event] = []
    device, cushion = _device("lp4-ascii", events)

    async def main() -> None:
        async with device:
            device.resume()
            device.set(Setpoint((0.3,) * 4))
            await advance(15)
            assert any(cushion.state.commanded)
            transport = device.transport
            assert isinstance(transport, SimTransport) and transport.link is not None
            transport.link.disconnect()  # the simulator is gone; no stop can reach it
            await advance(0.01)

    run_virtual(main())  # the lost link ends the device's loops; close reports it
    offs = [e for e in events if isinstance(e, AllOff)]
    assert offs and not offs[-1].sent
    assert "watchdog" in offs[-1].fallback and "2 s" in offs[-1].fallback
    assert device.last_all_off is offs[-1]


def test_all_off_is_confirmed_by_the_ack_on_an_acking_cushion() -> None:
    events: list[Event] = []
    device, cushion = _device("vb6-binary", events)

    async def main() -> None:
        async with device:
            device.resume()
            device.set(Setpoint((0.3,) * 6))
            await advance(5)

    run_virtual(main())
    last = [e for e in events if isinstance(e, AllOff)][-1]
    assert last.sent and last.confirmed is True
    assert isinstance(cushion.recorder.commands()[-1], Stop)


def test_a_cancellation_during_close_still_writes_the_all_off_and_closes() -> None:
    events: list[Event] = []
    device, cushion = _device("vb6-binary", events)

    async def main() -> None:
        async with device:
            device.resume()
            device.set(Setpoint((0.4,) * 6))
            await advance(10)
            cushion.faults.reply_delay_s = 0.15  # close waits for the stop's late ack
        # (never reached: the test cancels the close)

    async def outer() -> None:
        task = asyncio.create_task(main())
        while not cushion.faults.reply_delay_s:
            await advance(0.01)
        await advance(0.001)  # close() is now waiting for the stop's ack
        task.cancel()
        await advance(0.001)
        task.cancel()  # a second signal, a second cancel: still no abandoned all-off
        with pytest.raises(asyncio.CancelledError):
            await task

    run_virtual(outer())
    assert isinstance(cushion.recorder.commands()[-1], Stop)
    assert not any(cushion.state.commanded)
    transport = device.transport
    assert isinstance(transport, SimTransport) and transport.link is None  # closed


def test_an_event_consumer_that_raises_cannot_break_the_session() -> None:
    profile = load_profile("lp4-ascii")
    cushion = SimulatedCushion(profile)
    seen: list[Event] = []

    def consumer(event: Event) -> None:
        seen.append(event)
        if len(seen) > 5:
            raise BrokenPipeError(32, "Broken pipe")  # `--json | head -5`

    async def main() -> object:
        transport = SimTransport(Endpoint("sim", profile.name), profile, cushion)
        return await run_program(
            load_program("lumbar-short"),
            profile,
            DEFAULT_LIMITS,
            RunOptions(Endpoint("sim", profile.name), handle_signals=False),
            emit=consumer,
            transport=transport,
        )

    result = run_virtual(main())
    assert result.exit_code == 0  # type: ignore[attr-defined]
    assert len(seen) == 6  # dropped after its first failure, reported once
    cushion.recorder.assert_all_off_at_end()


class _HangsUpAtOnce(SimTransport):
    """A cushion that drops the line as soon as it is connected."""

    async def open(self) -> None:
        await super().open()
        assert self.link is not None
        self.link.disconnect()


def test_a_failed_first_write_closes_the_transport() -> None:
    profile = load_profile("lp4-ascii")
    transport = _HangsUpAtOnce(Endpoint("sim", profile.name), profile)

    async def main() -> None:
        async with Device(transport, profile, DEFAULT_LIMITS, emit=lambda e: None):
            raise AssertionError("the device must not open")

    with pytest.raises(DeviceError):
        run_virtual(main())
    assert transport.link is None  # the half-done open was unwound


@pytest.mark.parametrize("profile", ["lp4-ascii", "remote-stepper"])
def test_a_cushion_that_restarts_mid_run_is_stopped_not_raised_again(profile: str) -> None:
    rebooted: list[float] = []

    async def during(session: Session, cushion: SimulatedCushion) -> None:
        top = cushion.profile.intensity.max
        for _ in range(900):  # well into the program (bounded: it lasts 15-26 min)
            if max(cushion.state.commanded) >= max(1, int(0.3 * top)):
                break
            await advance(1)
        rebooted.append(asyncio.get_running_loop().time() - session.origin)
        cushion.reboot()  # power-cycled: outputs off, state forgotten

    program = "lumbar-short" if profile == "remote-stepper" else "lumbar-classic"
    run = simulate(program, profile, during=during)
    assert run.result.exit_code == EXIT_SAFETY, run.result
    resets = run.of(DeviceReset)
    assert resets and resets[0].t_s - rebooted[0] < 1.0  # noticed within a poll or two
    top = run.profile.intensity.max
    points = wire_points(run.cushion.recorder, top)
    before = max(v for t, v in points if t < rebooted[0])
    # Until it is noticed, only the plan's own level changes can reach the restarted cushion
    # (never a lease renewal of the old levels), and never above where it was ...
    window = [v for t, v in points if rebooted[0] < t < resets[0].t_s + 1e-6]
    assert all(v <= before + 1e-9 for v in window), (before, window)
    # ... and from the moment it is noticed, nothing but off.
    assert not any(v for t, v in points if t > resets[0].t_s + 1e-6)
    run.cushion.recorder.assert_all_off_at_end()


def test_a_restart_under_steady_outputs_is_noticed_on_an_unleased_cushion() -> None:
    # vb6-binary has no lease: while a pattern rewrites every zone faster than the status
    # poll, a restart cannot be told from the plan's own writes (a boot banner would tell).
    # Under steady outputs, the poll sees levels the cushion was not sent.
    events: list[Event] = []
    device, cushion = _device("vb6-binary", events)
    rebooted: list[float] = []

    async def main() -> None:
        async with device:
            device.resume()
            device.set(Setpoint((0.3,) * 6))
            await advance(30)
            assert max(cushion.state.commanded) > 0.25 * device.profile.intensity.max
            rebooted.append(cushion.firmware.now())
            cushion.reboot()
            await advance(5)

    run_virtual(main())
    resets = [e for e in events if isinstance(e, DeviceReset)]
    assert resets and resets[0].t_s - rebooted[0] < 1.0
    points = wire_points(cushion.recorder, device.profile.intensity.max)
    assert not any(v for t, v in points if t > rebooted[0])  # never its old levels again


def test_with_auto_resume_a_restarted_cushion_ramps_from_zero() -> None:
    rebooted: list[float] = []

    async def during(session: Session, cushion: SimulatedCushion) -> None:
        for _ in range(900):
            if max(cushion.state.commanded) >= 0.3 * cushion.profile.intensity.max:
                break
            await advance(1)
        rebooted.append(cushion.firmware.now())
        cushion.reboot()

    run = simulate("lumbar-classic", "lp4-ascii", during=during, auto_resume=True)
    assert run.result.exit_code == 0 and run.of(DeviceReset)
    top = run.profile.intensity.max
    after = [(t, v) for t, v in wire_points(run.cushion.recorder, top) if t > rebooted[0]]
    assert after
    quantum = 1 / top
    assert not Ramp(DEFAULT_LIMITS.ramp_per_s, quantum).check(after, start=rebooted[0])


def test_a_silent_stepping_cushion_is_noticed_within_its_reply_time() -> None:
    silenced: list[float] = []

    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(600)
        silenced.append(asyncio.get_running_loop().time() - session.origin)
        cushion.faults.silent = True

    run = simulate("lumbar-short", "remote-stepper", during=during)
    assert run.result.exit_code == 3 and "did not answer" in run.result.message
    ended = run.of(SessionEnded)[0]
    timeout = run.profile.limits.reply_timeout_s
    assert ended.t_s - silenced[0] <= 3 * timeout + 1e-6  # one poll period plus its time-out


def test_a_cushion_with_no_dead_man_is_named_before_the_run() -> None:
    run = simulate("lumbar-short", "remote-stepper")
    notes = run.of(SessionStarted)[0].notes
    assert any("cannot be stopped" in n and "15 minutes" in n for n in notes), notes
    leased = simulate("lumbar-short", "lp4-ascii")
    assert not any("cannot be stopped" in n for n in leased.of(SessionStarted)[0].notes)


@pytest.mark.realtime
def test_a_second_controller_cannot_open_a_port_in_use() -> None:
    profile = load_profile("lp4-ascii")

    async def main() -> None:
        async with PtyLink(SimulatedCushion(profile)) as link:
            first = SerialTransport(Endpoint("serial", link.port), profile)
            await first.open()
            try:
                second = SerialTransport(Endpoint("serial", link.port), profile)
                with pytest.raises(DeviceError, match="Another program holds this port"):
                    await second.open()
            finally:
                await first.close()
            again = SerialTransport(Endpoint("serial", link.port), profile)
            await again.open()  # free once the first let go
            await again.close()

    asyncio.run(main())


def test_a_refused_command_is_followed_by_the_whole_state_again() -> None:
    # After a nak nothing is known about what the cushion holds: the next update resends
    # every zone, not only the changed ones. (Here the cushion refuses those too: three in a
    # row end the session, exit 3, with everything off.)
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(600)
        apply_schedule(
            cushion,
            FaultSchedule.of(
                {"kind": "nak", "after": "command:SetZone", "at_s": 0, "duration_s": 0.2}
            ),
        )

    run = simulate("lumbar-classic", "lp4-ascii", during=during)
    rec = run.cushion.recorder
    first_nak = next(e.t for e in rec.of("reply") if e.detail.kind == "nak")
    resent = [
        e.detail for e in rec.of("command") if e.t > first_nak and isinstance(e.detail, SetZone)
    ]
    running = [z for z, level in enumerate(run.sent[-1].levels) if level]
    assert {c.zone for c in resent} >= set(running) and len(running) >= 2
    assert sum(1 for f in run.of(Fault) if "refused" in f.message) == 2
    assert run.result.exit_code == 3 and "refused 3 commands" in run.result.message
    rec.assert_all_off_at_end()


def test_three_refusals_in_a_row_end_the_session_with_exit_3() -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(600)
        apply_schedule(cushion, FaultSchedule.of({"kind": "nak", "at_s": 0}))

    run = simulate("lumbar-classic", "vb6-binary", during=during)
    assert run.result.exit_code == 3 and "refused 3 commands" in run.result.message
    run.cushion.recorder.assert_all_off_at_end()


def test_three_unreadable_replies_end_the_session_with_exit_3() -> None:
    async def during(session: Session, cushion: SimulatedCushion) -> None:
        await advance(600)
        cushion.faults.garble_replies = True

    run = simulate("lumbar-classic", "vb6-binary", during=during)
    # Three unreadable acks in a row, or a status that never arrives readable: both mean
    # the cushion cannot be understood, whichever comes first.
    assert run.result.exit_code == 3
    assert "garbage" in run.result.message or "did not answer" in run.result.message
    assert [f for f in run.of(Fault) if "unreadable" in f.message]
    assert not any(run.cushion.state.commanded)  # the stop still went through


def test_a_cushion_that_ignores_the_final_all_off_is_not_reported_off() -> None:
    """An ack is no proof: the status after the all-off is, and the exit code says so."""
    prof = load_profile("vb6-binary")
    prog = load_program("lumbar-short")
    cushion = SimulatedCushion(prof)
    events: list[Event] = []

    async def main() -> SessionResult:
        # Acks everything and obeys nothing from 3 s before the end: the last steps of the
        # final ramp-down, outputs still on, every sample a write (no status poll between).
        apply_schedule(cushion, FaultSchedule.of(
            {"kind": "ignore_commands", "at_s": prog.duration_s - 3.0}))
        return await run_program(
            prog, prof, DEFAULT_LIMITS, RunOptions(Endpoint("sim", prof.name),
                                                   handle_signals=False),
            emit=events.append, transport=SimTransport(Endpoint("sim", prof.name), prof, cushion),
        )

    result = run_virtual(main())
    assert any(cushion.state.commanded), "the fault should have left outputs on"
    off = result.all_off
    assert off is not None and off.sent and off.confirmed is False, off
    assert "does not obey" in off.still_on and "watchdog" in off.fallback
    assert result.exit_code == EXIT_SAFETY and "did not turn off" in result.message, result

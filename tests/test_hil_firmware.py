"""The firmware model on Command values, on the virtual-time loop (no bytes, no sleeps)."""

from __future__ import annotations

import asyncio

import pytest

from firmware_profiles.commands import (
    Keepalive,
    Press,
    Query,
    Reply,
    SetAll,
    SetFrequency,
    SetHeat,
    SetMode,
    SetZone,
    Stop,
)
from hil.firmware import NAK_OUT_OF_RANGE, NAK_TOO_FAST, Firmware
from hil.recorder import Recorder
from hil.spec import FirmwareSpec
from hil.vtime import run_virtual

ABSOLUTE = FirmwareSpec(
    zone_count=4,
    control="absolute",
    max_level=10,
    frequency_range=(20, 80),
    heat_levels=3,
    modes=(0, 1, 2),
    max_update_hz=20.0,
    watchdog_s=1.0,
    auto_off_s=900.0,
    max_lease_s=5.0,
    acks=True,
    naks=True,
)
STEPPING = FirmwareSpec(
    zone_count=2,
    control="stepping",
    max_level=5,
    heat_levels=1,
    modes=(1, 2, 3),
    max_update_hz=5.0,
    auto_off_s=600.0,
)


NAK = Reply("nak", {"code": NAK_OUT_OF_RANGE})


def make(spec: FirmwareSpec, **kw: object) -> Firmware:
    return Firmware(spec, Recorder(spec.zone_count, spec.min_level), **kw)  # type: ignore[arg-type]


async def at(t: float) -> None:
    """Sleep until loop time ``t`` (s)."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(t - loop.time())


def test_absolute_set_and_ack() -> None:
    async def main() -> None:
        fw = make(ABSOLUTE)
        assert fw.handle(SetZone(1, 7)) == Reply("ack")
        assert fw.handle(SetAll((1, 2, 3, 4))) == Reply("ack")
        assert fw.state().commanded == (1, 2, 3, 4)
        assert fw.state().powered
        assert fw.recorder.levels(1) == [(0.0, 7), (0.0, 2)]

    run_virtual(main())


def test_watchdog_trips_without_frames_and_not_with_keepalives() -> None:
    async def main() -> None:
        fw = make(ABSOLUTE)
        fw.handle(SetZone(0, 5))
        for t in (0.5, 1.2, 1.9, 2.6):  # keepalives 0.7 s apart, under watchdog_s = 1.0
            await at(t)
            fw.handle(Keepalive())
        assert fw.state().commanded[0] == 5
        fw.recorder.assert_no("watchdog")
        await at(3.55)
        assert fw.state().commanded[0] == 5
        await at(3.65)
        assert fw.state().commanded == (0, 0, 0, 0)
        trip = fw.recorder.first("watchdog")
        assert trip is not None and trip.t == pytest.approx(2.6 + 1.0)
        fw.recorder.assert_all_off_at_end()

    run_virtual(main())


def test_lease_expires_unless_renewed() -> None:
    async def main() -> None:
        fw = make(ABSOLUTE)
        fw.handle(SetZone(0, 4, duration_s=0.5))
        fw.handle(SetZone(1, 4, duration_s=0.5))
        for t in (0.3, 0.6, 0.9):  # renew zone 1 only; keepalives spare the watchdog
            await at(t)
            fw.handle(SetZone(1, 4, duration_s=0.5))
        await at(1.2)
        assert fw.state().commanded[:2] == (0, 4)
        expired = fw.recorder.of("lease_expired")
        assert [(e.t, e.detail) for e in expired] == [(pytest.approx(0.5), 0)]
        await at(1.45)
        fw.handle(Keepalive())
        await at(1.5)
        assert fw.state().commanded[:2] == (0, 0)
        assert [e.detail for e in fw.recorder.of("lease_expired")] == [0, 1]

    run_virtual(main())


def test_lease_longer_than_profile_allows_is_refused_or_clamped() -> None:
    async def main() -> None:
        strict = make(ABSOLUTE)
        assert strict.handle(SetZone(0, 3, duration_s=60.0)) == NAK
        assert strict.state().commanded[0] == 0
        lenient = make(ABSOLUTE, out_of_range="clamp")
        assert lenient.handle(SetZone(0, 3, duration_s=60.0)) == Reply("ack")
        await at(4.9)
        lenient.handle(Keepalive())
        await at(5.5)
        assert lenient.state().commanded[0] == 0

    run_virtual(main())


def test_stop_turns_everything_off_at_once() -> None:
    async def main() -> None:
        fw = make(ABSOLUTE)
        fw.handle(SetAll((3, 3, 3, 3)))
        await at(0.1)
        fw.handle(SetHeat(2))
        await at(0.2)
        assert fw.handle(Stop()) == Reply("ack")
        state = fw.state()
        assert state.commanded == (0, 0, 0, 0) and state.heat == 0 and not state.powered
        assert all(t == pytest.approx(0.2) for t, _ in fw.recorder.levels(0)[1:])

    run_virtual(main())


def test_out_of_range_is_refused_with_nak_and_changes_nothing() -> None:
    async def main() -> None:
        fw = make(ABSOLUTE)
        bad = [
            SetZone(0, 11),
            SetZone(4, 1),
            SetZone(0, -1),
            SetAll((1, 2)),
            SetFrequency(81),
            SetHeat(4),
            SetMode(9),
            Press("intensity_up"),
        ]
        for i, cmd in enumerate(bad):
            await at(i * 0.1)
            reply = fw.handle(cmd)
            assert reply is not None and reply.kind == "nak", cmd
        assert fw.recorder.count("refused") == len(bad)
        assert fw.state().commanded == (0, 0, 0, 0) and fw.state().heat == 0
        assert fw.recorder.of("level") == []

    run_virtual(main())


def test_out_of_range_clamps_when_asked() -> None:
    async def main() -> None:
        fw = make(ABSOLUTE, out_of_range="clamp")
        assert fw.handle(SetZone(0, 99)) == Reply("ack")
        assert fw.handle(SetFrequency(5)) == Reply("ack")
        assert fw.state().commanded[0] == 10 and fw.state().frequency_raw == 20

    run_virtual(main())


def test_frames_faster_than_max_update_hz_are_refused_per_target() -> None:
    async def main() -> None:
        fw = make(ABSOLUTE)  # 20 Hz: 50 ms apart (45 ms with the jitter allowance)
        assert fw.handle(SetZone(0, 1)) == Reply("ack")
        assert fw.handle(SetZone(1, 1)) == Reply("ack")  # another zone: own bucket
        await at(0.02)
        assert fw.handle(SetZone(0, 2)) == Reply("nak", {"code": NAK_TOO_FAST})
        assert fw.handle(Stop()) == Reply("ack")  # stop is never rate limited
        await at(0.047)
        assert fw.handle(SetZone(0, 3)) == Reply("ack")
        assert fw.recorder.levels(0) == [(0.0, 1), (0.02, 0), (0.047, 3)]

    run_virtual(main())


def test_stepping_presses_count_and_saturate() -> None:
    async def main() -> None:
        fw = make(STEPPING)
        assert fw.handle(Press("intensity_up")) is None  # this profile never acks
        for i in range(1, 8):
            await at(i * 0.2)
            fw.handle(Press("intensity_up"))
        assert fw.state().level == 5 and fw.state().commanded == (5, 5)
        await at(2.0)
        fw.handle(Press("intensity_down"))
        await at(2.2)
        fw.handle(Press("intensity_down"))
        assert fw.state().level == 3
        assert len(fw.recorder.commands(Press)) == 10
        await at(2.4)
        fw.handle(Press("next_mode"))
        await at(2.6)
        fw.handle(Press("next_mode"))
        await at(2.8)
        fw.handle(Press("next_mode"))
        assert fw.state().mode == 1  # cycled 1 -> 2 -> 3 -> 1
        await at(3.0)
        fw.handle(Press("heat_toggle"))
        assert fw.state().heat == 1
        await at(3.2)
        fw.handle(Press("heat_toggle"))
        assert fw.state().heat == 0
        status = fw.handle(Query())
        assert status is not None and status.kind == "status"
        assert status.fields["level"] == 3 and status.fields["mode"] == 1
        await at(3.4)
        fw.handle(Press("power"))
        assert not fw.state().powered and fw.state().level == 0
        await at(3.6)
        fw.handle(Press("power"))
        assert fw.state().level == 1

    run_virtual(main())


def test_stepping_press_too_fast_is_dropped() -> None:
    async def main() -> None:
        fw = make(STEPPING)  # 5 Hz
        fw.handle(Press("intensity_up"))
        fw.handle(Press("intensity_up"))
        assert fw.state().level == 1
        assert fw.recorder.count("refused") == 1

    run_virtual(main())


def test_stepping_refuses_absolute_levels() -> None:
    async def main() -> None:
        fw = make(STEPPING)
        assert fw.handle(SetZone(0, 1)) is None  # no nak in this profile: silence
        assert fw.state().commanded == (0, 0)

    run_virtual(main())


def test_auto_off_after_powered_time() -> None:
    async def main() -> None:
        fw = make(STEPPING)
        await at(10.0)
        fw.handle(Press("intensity_up"))
        await at(609.0)
        assert fw.state().powered
        await at(611.0)
        assert not fw.state().powered
        event = fw.recorder.first("auto_off")
        assert event is not None and event.t == pytest.approx(610.0)
        # a new press powers it again, with a fresh auto-off period
        fw.handle(Press("intensity_up"))
        await at(1200.0)
        assert fw.state().powered
        await at(1300.0)
        assert fw.recorder.count("auto_off") == 2

    run_virtual(main())


def test_auto_off_not_reached_when_switched_off_in_between() -> None:
    async def main() -> None:
        fw = make(STEPPING)
        fw.handle(Press("intensity_up"))
        await at(300.0)
        fw.handle(Press("intensity_down"))
        await at(400.0)
        fw.handle(Press("intensity_up"))
        await at(900.0)
        assert fw.state().powered
        fw.recorder.assert_no("auto_off")

    run_virtual(main())


def test_motor_output_lags_the_command_linearly() -> None:
    async def main() -> None:
        fw = make(ABSOLUTE, spin_up_s=1.0)  # full scale (10 levels) in 1 s
        fw.handle(SetZone(0, 10))
        assert fw.state().actual[0] == 0.0
        await at(0.5)
        assert fw.state().actual[0] == pytest.approx(5.0)
        fw.handle(SetZone(0, 2))  # falls from where it is
        await at(0.6)
        assert fw.state().actual[0] == pytest.approx(4.0)
        await at(0.9)
        assert fw.state().actual[0] == pytest.approx(2.0)
        fw.handle(Stop())
        assert fw.state().commanded[0] == 0  # the command side stops at once
        await at(2.0)
        assert fw.state().actual[0] == 0.0

    run_virtual(main())


def test_heater_warms_towards_its_level_and_cools_after() -> None:
    async def main() -> None:
        fw = make(ABSOLUTE)
        start = fw.state().surface_temp_c
        fw.handle(SetHeat(3))
        for t in (0.5, 1.0):  # keep the watchdog fed for a moment
            await at(t)
            fw.handle(Keepalive())
        warm = fw.state().surface_temp_c
        assert warm > start
        await at(5.0)  # watchdog switched the heater off at 2.0
        assert fw.state().heat == 0
        later = fw.state(t=600.0).surface_temp_c
        assert later < fw.state().surface_temp_c
        assert fw.state(t=10_000.0).surface_temp_c == pytest.approx(start)

    run_virtual(main())


def test_reboot_forgets_everything() -> None:
    async def main() -> None:
        fw = make(ABSOLUTE)
        fw.handle(SetAll((2, 2, 2, 2), duration_s=1.0))
        fw.handle(SetMode(2))
        fw.reboot()
        state = fw.state()
        assert state.commanded == (0, 0, 0, 0) and state.mode == 0 and not state.powered
        await at(3.0)  # old timers are gone: no watchdog or lease events after reboot
        kinds = [e.kind for e in fw.recorder]
        assert kinds[-1] == "reboot" and "watchdog" not in kinds and "lease_expired" not in kinds

    run_virtual(main())

"""The simulated cushion through real bytes: the profile codec on both sides, in-process link,
virtual-time loop (no sleeps, no pty)."""

from __future__ import annotations

import asyncio

import pytest

from firmware_profiles import Codec, Profile, load_profile
from firmware_profiles.commands import (
    BadFrame,
    Command,
    Keepalive,
    Press,
    Query,
    Reply,
    SetAll,
    SetFrequency,
    SetHeat,
    SetZone,
    Stop,
)
from hil.cushion import SimulatedCushion
from hil.firmware import NAK_BAD_FRAME, NAK_OUT_OF_RANGE
from hil.links import InProcessLink
from hil.vtime import run_virtual
from tests.support import advance

PROFILES = ("lp4-ascii", "vb6-binary", "remote-stepper")


class Wire:
    """The controller's end of an in-process link, speaking the profile's codec."""

    def __init__(self, cushion: SimulatedCushion, *, check_values: bool = True) -> None:
        self.cushion = cushion
        self.codec = Codec(cushion.profile, check_values=check_values)
        self.replies = self.codec.reply_parser()
        self.link = InProcessLink(cushion)

    async def send(self, *commands: Command) -> None:
        for command in commands:
            await self.link.write(self.codec.encode(command))
        await asyncio.sleep(0)  # delivery happens on the next loop iteration

    async def receive(self, timeout_s: float = 0.05) -> list[Reply | BadFrame]:
        """Return every reply that arrives within ``timeout_s`` (virtual seconds)."""
        out: list[Reply | BadFrame] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (left := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(self.link.read(), left)
            except TimeoutError:
                break
            out.extend(self.replies.feed(data))
        return out


def sample_commands(profile: Profile) -> list[Command]:
    """One valid command of every kind the profile supports (queries last)."""
    n = len(profile.zones)
    out: list[Command] = []
    if profile.supports("set_all"):
        out.append(SetAll(tuple(min(i + 1, profile.intensity.max) for i in range(n))))
    if profile.supports("set_zone"):
        out.append(SetZone(n - 1, 2))
    if profile.supports("set_frequency"):
        assert profile.frequency is not None
        out.append(SetFrequency(profile.frequency.raw_values[-1]))
    if profile.supports("set_heat"):
        out.append(SetHeat(1))
    out.extend(
        Press(button)  # type: ignore[arg-type]
        for button in ("intensity_up", "next_mode", "heat_toggle")
        if profile.supports(f"press.{button}")
    )
    if profile.supports("keepalive"):
        out.append(Keepalive())
    out.append(Stop())
    return out


@pytest.mark.parametrize("name", PROFILES)
def test_every_command_decodes_and_every_reply_parses(name: str) -> None:
    profile = load_profile(name)
    spacing = 1.0 / profile.limits.max_update_hz

    async def main() -> None:
        wire = Wire(SimulatedCushion(profile))
        for command in sample_commands(profile):
            await wire.send(command)
            replies = await wire.receive(spacing)
            expected = [Reply("ack")] if profile.limits.ack_every_command else []
            assert replies == expected, command
        received = wire.cushion.recorder.commands()
        assert [type(c) for c in received] == [type(c) for c in sample_commands(profile)]
        wire.cushion.recorder.assert_no("bad_frame")
        wire.cushion.recorder.assert_no("refused")
        wire.cushion.recorder.assert_all_off_at_end()
        if profile.supports("query"):
            await wire.send(Query())
            (status,) = await wire.receive()
            assert isinstance(status, Reply) and status.kind == "status"
            assert set(status.fields) == set(wire.cushion.spec.status_fields or ())

    run_virtual(main())


def test_lp4_status_reports_levels_frequency_and_heat() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")))
        await wire.send(SetZone(0, 7), SetZone(2, 4), SetFrequency(3), SetHeat(2), Query())
        replies = await wire.receive()
        assert replies[:-1] == [Reply("ack")] * 4
        assert replies[-1] == Reply(
            "status",
            {"level0": 7, "level1": 0, "level2": 4, "level3": 0, "frequency": 3, "heat": 2},
        )

    run_virtual(main())


def test_stepping_presses_through_bytes_count_and_status_tells() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("remote-stepper")))
        for _ in range(3):
            await wire.send(Press("intensity_up"))
            assert await wire.receive(0.2) == []  # this cushion never acks
        await wire.send(Press("next_mode"), Query())
        (status,) = await wire.receive()
        assert status == Reply("status", {"level": 3, "mode": 2, "heat": 0})
        assert wire.cushion.state.commanded == (3,)

    run_virtual(main())


@pytest.mark.parametrize("name", ["lp4-ascii", "vb6-binary"])
def test_bad_checksum_is_naked_and_does_not_feed_the_watchdog(name: str) -> None:
    profile = load_profile(name)
    assert profile.limits.watchdog_s is not None
    watchdog_s = profile.limits.watchdog_s

    async def main() -> None:
        wire = Wire(SimulatedCushion(profile))
        loop = asyncio.get_running_loop()
        first = SetAll((9,) * 6) if name == "vb6-binary" else SetZone(0, 9, duration_s=9.9)
        await wire.send(first)
        start = loop.time()
        good = bytearray(wire.codec.encode(Keepalive()))
        good[-3] ^= 0x01  # inside the checksum (binary) or its hex digits (ASCII)
        bad = bytes(good)
        for _ in range(int(watchdog_s / 0.1) + 5):  # a corrupted keepalive every 0.1 s
            await wire.link.write(bad)
            await asyncio.sleep(0.1)
        rec = wire.cushion.recorder
        trip = rec.first("watchdog")
        assert trip is not None and trip.t == pytest.approx(start + watchdog_s, abs=1e-6)
        assert rec.count("bad_frame") > 0
        assert not any(isinstance(c, Keepalive) for c in rec.commands())
        replies = await wire.receive()
        assert Reply("nak", {"code": NAK_BAD_FRAME}) in replies
        assert wire.cushion.state.commanded == (0,) * len(profile.zones)

    run_virtual(main())


def test_frames_split_anywhere_decode_once() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("vb6-binary")))
        data = wire.codec.encode(SetAll((1, 2, 3, 4, 5, 6))) + wire.codec.encode(Query())
        for i in range(len(data)):
            await wire.link.write(data[i : i + 1])
        replies = await wire.receive()
        assert [r.kind for r in replies if isinstance(r, Reply)] == ["ack", "status"]
        assert wire.cushion.recorder.commands() == [SetAll((1, 2, 3, 4, 5, 6)), Query()]

    run_virtual(main())


def test_garbage_between_frames_is_skipped() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")))
        await wire.link.write(b"\x00\xffnoise\r\n" + wire.codec.encode(SetZone(1, 5)))
        replies = await wire.receive()
        assert replies[-1] == Reply("ack")
        assert wire.cushion.state.commanded[1] == 5
        assert wire.cushion.recorder.count("bad_frame") >= 1

    run_virtual(main())


def test_out_of_range_value_on_the_wire_is_naked() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")), check_values=False)
        await wire.send(SetZone(0, 11))
        await asyncio.sleep(0.1)
        await wire.send(SetFrequency(9))
        await asyncio.sleep(0.1)
        await wire.send(SetHeat(4))
        replies = await wire.receive()
        assert replies == [Reply("nak", {"code": NAK_OUT_OF_RANGE})] * 3
        assert wire.cushion.state.commanded == (0, 0, 0, 0)

    run_virtual(main())


def test_lp4_zone_lapses_when_its_lease_is_not_renewed() -> None:
    profile = load_profile("lp4-ascii")
    lease_s = profile.limits.lease_s
    assert lease_s is not None

    async def main() -> None:
        wire = Wire(SimulatedCushion(profile))
        loop = asyncio.get_running_loop()
        await wire.send(SetZone(0, 6), SetZone(1, 6))  # the codec fills in the profile's lease
        start = loop.time()
        for _ in range(8):  # renew zone 1 only, every 0.5 s (which also feeds the watchdog)
            await asyncio.sleep(0.5)
            await wire.send(SetZone(1, 6))
        assert wire.cushion.state.commanded[:2] == (0, 6)
        (expiry,) = wire.cushion.recorder.of("lease_expired")
        assert expiry.detail == 0 and expiry.t == pytest.approx(start + lease_s, abs=1e-6)

    run_virtual(main())


def test_auto_off_over_the_wire_with_keepalives() -> None:
    profile = load_profile("vb6-binary")
    auto_off_s = profile.limits.auto_off_s
    keepalive_s = profile.limits.keepalive_s
    assert auto_off_s is not None and keepalive_s is not None

    async def main() -> None:
        wire = Wire(SimulatedCushion(profile))
        await wire.send(SetAll((3,) * 6))
        for _ in range(int((auto_off_s + 5) / keepalive_s)):
            await wire.send(Keepalive())
            await asyncio.sleep(keepalive_s)
        rec = wire.cushion.recorder
        rec.assert_no("watchdog")
        event = rec.first("auto_off")
        assert event is not None and event.t == pytest.approx(auto_off_s, abs=1e-6)
        rec.assert_all_off_at_end()

    run_virtual(main())


def test_fault_silent_obeys_without_replying() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("vb6-binary")))
        wire.cushion.faults.silent = True
        await wire.send(SetZone(0, 50), Query())
        assert await wire.receive(0.5) == []  # within watchdog_s
        assert wire.cushion.state.commanded[0] == 50
        wire.cushion.faults.reset()
        await wire.send(Query())
        assert [r.kind for r in await wire.receive() if isinstance(r, Reply)] == ["status"]

    run_virtual(main())


def test_fault_garbled_replies_fail_the_reply_parser() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("vb6-binary")))
        wire.cushion.faults.garble_replies = True
        await wire.send(Query())
        replies = await wire.receive()
        assert replies and all(isinstance(r, BadFrame) for r in replies)

    run_virtual(main())


def test_fault_drop_rx_ignores_everything() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")))
        wire.cushion.faults.drop_rx = True
        await wire.send(SetZone(0, 5))
        assert await wire.receive() == []
        assert wire.cushion.recorder.commands() == []
        assert wire.cushion.state.commanded[0] == 0

    run_virtual(main())


def test_fault_reply_delay_holds_replies() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")))
        wire.cushion.faults.reply_delay_s = 0.25
        loop = asyncio.get_running_loop()
        start = loop.time()
        await wire.send(Keepalive())
        data = await wire.link.read()
        assert wire.replies.feed(data) == [Reply("ack")]
        assert loop.time() - start == pytest.approx(0.25, abs=1e-6)

    run_virtual(main())


def test_fault_ignore_commands_acks_but_keeps_outputs() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")))
        await wire.send(SetZone(0, 5))
        wire.cushion.faults.ignore_commands = True
        await wire.send(Stop())
        assert await wire.receive() == [Reply("ack"), Reply("ack")]
        assert wire.cushion.state.commanded[0] == 5

    run_virtual(main())


def test_reboot_drops_a_half_received_frame() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("vb6-binary")))
        frame = wire.codec.encode(SetAll((1,) * 6))
        await wire.link.write(frame[:4])
        await asyncio.sleep(0)
        wire.cushion.reboot()
        await wire.send(Query())
        replies = await wire.receive()
        # The boot frame the restart sends, then the status: the half frame is gone.
        assert [r.kind for r in replies if isinstance(r, Reply)] == ["boot", "status"]
        assert wire.cushion.recorder.commands() == [Query()]

    run_virtual(main())


def test_link_disconnect_fails_pending_and_later_reads_and_writes() -> None:
    async def main() -> None:
        cushion = SimulatedCushion(load_profile("lp4-ascii"))
        link = InProcessLink(cushion)
        pending = asyncio.ensure_future(link.read())
        await asyncio.sleep(0)
        link.disconnect()
        with pytest.raises(ConnectionError):
            await pending
        with pytest.raises(ConnectionError):
            await link.read()
        with pytest.raises(ConnectionError):
            await link.write(b"X*58\r\n")
        assert cushion.on_transmit is None
        assert [e.detail for e in cushion.recorder.of("link")] == ["connected", "disconnected"]

    run_virtual(main())


def test_the_in_process_wire_has_no_delay_and_closes_cleanly() -> None:
    async def main() -> None:
        cushion = SimulatedCushion(load_profile("lp4-ascii"))
        codec = Codec(cushion.profile)
        link = InProcessLink(cushion)
        await link.write(codec.encode(SetZone(0, 3)))
        assert len(cushion.recorder.commands()) == 1  # delivered at once
        link.close()
        with pytest.raises(ConnectionError):
            await link.write(codec.encode(SetZone(0, 4)))
        assert len(cushion.recorder.commands()) == 1  # nothing passes a closed link
        # a new link to the same cushion works (the controller reconnected)
        await advance(1)  # past the firmware's rate limit
        again = InProcessLink(cushion)
        await again.write(codec.encode(SetZone(0, 3)))
        assert codec.reply_parser().feed(await again.read()) == [Reply("ack")]

    run_virtual(main())


def test_make_cushion_fixture_builds_by_name(make_cushion) -> None:  # type: ignore[no-untyped-def]
    cushion = make_cushion("remote-stepper", spin_up_s=0.0, name="left")
    assert isinstance(cushion, SimulatedCushion)
    assert cushion.name == "left" and cushion.spec.control == "stepping"


def test_a_full_session_of_frames_runs_on_virtual_time() -> None:
    """26 minutes of set_all at the device's rate limit plus keepalives (functional, no timing)."""
    profile = load_profile("vb6-binary")

    async def main() -> None:
        wire = Wire(SimulatedCushion(profile, spin_up_s=0.5))
        loop = asyncio.get_running_loop()
        step = 1.0 / 10
        for i in range(int(26 * 60 / step)):
            level = min(200, i // 10)
            await wire.link.write(wire.codec.encode(SetAll((level,) * 6)))
            await asyncio.sleep(step)
            if i % 100 == 0:
                await wire.link.read()  # drain acks now and then
        await wire.send(Stop())
        assert loop.time() == pytest.approx(26 * 60, abs=0.5)
        rec = wire.cushion.recorder
        rec.assert_no("watchdog")
        rec.assert_no("refused")
        assert rec.max_level() == 200
        rec.assert_all_off_at_end()

    run_virtual(main())

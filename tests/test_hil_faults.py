"""Fault schedules on the simulated cushion, driven through its byte interface with frames from
the profile's codec (no controller code): the schedule format and every fault kind.

Virtual clock for the in-process link; the PTY hang-up runs on the real clock with bounded
polls only (no timing assertions).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import serial
import serial_asyncio_fast

from firmware_profiles import Codec, load_profile
from firmware_profiles.commands import (
    BadFrame,
    Command,
    Keepalive,
    Press,
    Query,
    Reply,
    SetAll,
    SetHeat,
    SetZone,
    Stop,
)
from firmware_profiles.loader import builtin_profiles
from hil.cushion import SimulatedCushion
from hil.faults import (
    FaultEntry,
    FaultSchedule,
    FaultScheduleError,
    apply_schedule,
    load_schedule,
)
from hil.links import InProcessLink
from hil.ptylink import PtyLink
from hil.serve import run_standalone
from hil.vtime import run_virtual
from tests.support import advance

EXAMPLE = """\
# Fault schedule: each [[fault]] begins at_s after its trigger and lasts duration_s.
[[fault]]
kind = "late_replies"        # replies held back ...
at_s = 30                    # ... from 30 s after the schedule is applied
duration_s = 10              # ... for 10 s
params = { delay_s = 0.4 }

[[fault]]
kind = "reset"               # the firmware reboots and forgets its state
after = "connected"          # counted from the first time a controller connects
at_s = 120
duration_s = 0.5             # deaf while it boots

[[fault]]
kind = "hang_up"             # the cushion closes the link ...
after = "stop"               # ... right after the second stop frame it receives
occurrence = 2
duration_s = 3               # ... and stays out of reach for 3 s
"""


class Wire:
    """The controller's end of an in-process link, speaking the profile's codec."""

    def __init__(self, cushion: SimulatedCushion) -> None:
        self.cushion = cushion
        self.codec = Codec(cushion.profile, check_values=False)
        self.replies = self.codec.reply_parser()
        self.link = InProcessLink(cushion)
        self.chunks: list[bytes] = []

    async def send(self, *commands: Command) -> None:
        for command in commands:
            await self.link.write(self.codec.encode(command))
        await asyncio.sleep(0)

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
            self.chunks.append(data)
            out.extend(self.replies.feed(data))
        return out


def kinds(replies: list[Reply | BadFrame]) -> list[str]:
    return [r.kind if isinstance(r, Reply) else "bad" for r in replies]


def play(cushion: SimulatedCushion, *entries: dict[str, object]) -> None:
    apply_schedule(cushion, FaultSchedule.of(*entries))


def fault_events(cushion: SimulatedCushion) -> list[tuple[float, object]]:
    return [(e.t, e.detail) for e in cushion.recorder.of("fault")]


# -- the format ----------------------------------------------------------------------------


def test_the_example_schedule_loads_from_toml_and_json(tmp_path: Path) -> None:
    toml_file = tmp_path / "faults.toml"
    toml_file.write_text(EXAMPLE, encoding="utf-8")
    schedule = load_schedule(toml_file)
    late, reset, hang = schedule.entries
    assert (late.kind, late.at_s, late.duration_s, late.after) == ("late_replies", 30, 10, "start")
    assert late.options.model_dump() == {"delay_s": 0.4}
    assert (reset.after, reset.at_s) == ("link:connected", 120)  # the alias, resolved
    assert (hang.after, hang.occurrence, hang.duration_s) == ("command:Stop", 2, 3)
    json_file = tmp_path / "faults.json"
    json_file.write_text(json.dumps(schedule.model_dump(by_alias=True)), encoding="utf-8")
    assert load_schedule(json_file) == schedule
    versioned = tmp_path / "versioned.toml"  # saying "format 1" changes nothing
    versioned.write_text("format = 1\n" + EXAMPLE, encoding="utf-8")
    assert load_schedule(versioned) == schedule
    bare = tmp_path / "bare.json"  # a bare list is fine too
    bare.write_text('[{"kind": "silence", "at_s": 1, "duration_s": 2}]', encoding="utf-8")
    assert load_schedule(bare).entries == (FaultEntry(kind="silence", at_s=1, duration_s=2),)


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ('[[fault]]\nkind = "melt"\n', ":2, key 'fault.0.kind'", "hang_up"),
        ('[[fault]]\nkind = "silence"\nat_s = -1\n', ":3, key 'fault.0.at_s'", "greater than"),
        ('[[fault]]\nkind = "silence"\nat_s = nan\n', ":3, key 'fault.0.at_s'", "finite"),
        ('[[fault]]\nkind = "silence"\nduration_s = inf\n', "key 'fault.0.duration_s'", "finite"),
        ('[[fault]]\nkind = "silence"\nwhen = 3\n', ":3, key 'fault.0.when'", "not a known key"),
        ('[[fault]]\nkind = "silence"\nafter = "lunch"\n', "key 'fault.0.after'", "unknown event"),
        (
            '[[fault]]\nkind = "silence"\n\n[[fault]]\nkind = "nak"\nparams = { code = 300 }\n',
            ":6, key 'fault.1.params.code'",
            "less than or equal to 255",
        ),
        (
            '[[fault]]\nkind = "split"\nparams = { pieces = 3 }\n',
            "key 'fault.0.params.pieces'",
            "not a parameter of 'split' (known: piece_bytes, gap_s)",
        ),
        ('[[fault]]\nkind = "garble"\nparams = { x = 1 }\n', "params.x", "known: none"),
        ('[[fault]\nkind = "silence"\n', ":1", "not valid TOML"),
        ('format = 2\n[[fault]]\nkind = "silence"\n', "key 'format'", "1"),
        ("fault = 3\n", "key 'fault'", "valid tuple"),
    ],
)
def test_bad_toml_schedules_name_file_line_and_key(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FaultScheduleError) as info:
        load_schedule(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert where in message and what in message, message


@pytest.mark.parametrize(
    ("name", "data", "what"),
    [
        ("bad.json", b'{"fault": [{"kind": "silence", "at_s": NaN}]}', "NaN is not a finite"),
        ("bad.json", b'{"fault": [\n{"kind": }]}', ":2: this is not valid JSON"),
        ("bad.json", b'"silence"', "must hold a list of faults"),
        ("bad.json", b"[" * 100_000 + b"]" * 100_000, "bad.json"),
        ("bad.json", b"\xff\xfe\x00binary", "not a UTF-8 text file"),
        ("bad.yaml", b"- kind: silence\n", "must be a .toml or .json file"),
        ("bad.json", b'{"fault": [{"kind": "deaf", "occurrence": 0}]}', "fault.0.occurrence"),
    ],
)
def test_bad_json_and_odd_files_give_clear_errors(
    tmp_path: Path, name: str, data: bytes, what: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(FaultScheduleError) as info:
        load_schedule(path)
    assert what in str(info.value) and str(path) in str(info.value), str(info.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FaultScheduleError, match="cannot read the file"):
        load_schedule(tmp_path / "nope.toml")


# -- timing: triggers, windows, overlap, cancel ------------------------------------------------


def test_windows_begin_and_end_on_the_loop_clock_and_overlaps_restore() -> None:
    async def main() -> None:
        cushion = SimulatedCushion(load_profile("lp4-ascii"))
        await advance(100)  # "start" means when the schedule is applied, not loop time 0
        play(
            cushion,
            {"kind": "late_replies", "at_s": 1, "duration_s": 10, "params": {"delay_s": 0.1}},
            {"kind": "late_replies", "at_s": 5, "duration_s": 10, "params": {"delay_s": 0.3}},
        )
        seen = []
        for t in (0.5, 2, 7, 12, 16):
            await advance(t - (asyncio.get_running_loop().time() - 100))
            seen.append(cushion.faults.reply_delay_s)
        assert seen == [0.0, 0.1, 0.3, 0.3, 0.0]
        assert fault_events(cushion) == [
            (101, ("late_replies", "begin")),
            (105, ("late_replies", "begin")),
            (111, ("late_replies", "end")),
            (115, ("late_replies", "end")),
        ]

    run_virtual(main())


def test_event_triggers_count_occurrences_and_cancel_ends_everything() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")))
        player = apply_schedule(
            wire.cushion,
            FaultSchedule.of(
                {"kind": "silence", "after": "stop", "occurrence": 2, "at_s": 0.5},
                {"kind": "overheat", "after": "command:SetHeat"},
            ),
        )
        await wire.send(Stop())
        await advance(1)
        assert not wire.cushion.faults.silent  # only the second stop counts
        await wire.send(Stop())
        assert not wire.cushion.faults.silent  # ... and only 0.5 s after it
        await advance(0.5)
        assert wire.cushion.faults.silent
        assert wire.cushion.state.surface_temp_c < 30
        await wire.send(SetHeat(1))
        await asyncio.sleep(0)
        assert wire.cushion.state.surface_temp_c == 48.0
        assert player.active == ("silence", "overheat") and player.pending == 0
        player.cancel()
        assert not wire.cushion.faults.silent and wire.cushion.faults.overheat_c is None
        assert player.active == ()

    run_virtual(main())


# -- each fault through the bytes ------------------------------------------------------------


def test_silence_stops_replies_for_its_window_only() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("vb6-binary")))
        play(wire.cushion, {"kind": "silence", "at_s": 1, "duration_s": 2})
        await wire.send(Keepalive())
        assert kinds(await wire.receive()) == ["ack"]
        await advance(1)
        await wire.send(SetZone(0, 40), Query())
        assert await wire.receive(0.5) == []
        assert wire.cushion.state.commanded[0] == 40  # still obeyed
        await advance(1.5)
        await wire.send(Query())
        assert kinds(await wire.receive()) == ["status"]

    run_virtual(main())


def test_deaf_ignores_bytes_so_the_watchdog_trips() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("vb6-binary")))
        await wire.send(SetAll((9,) * 6))
        play(wire.cushion, {"kind": "deaf", "duration_s": 5})
        for _ in range(8):  # keepalives every 0.25 s, all lost
            await advance(0.25)
            await wire.send(Keepalive())
        rec = wire.cushion.recorder
        assert rec.first("watchdog") is not None
        assert not any(isinstance(c, Keepalive) for c in rec.commands())

    run_virtual(main())


def test_late_replies_arrive_after_the_delay_in_order() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")))
        play(wire.cushion, {"kind": "late_replies", "params": {"delay_s": 0.4}})
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await wire.send(Keepalive(), Query())
        assert await wire.receive(0.39) == []
        replies = await wire.receive(0.02)
        assert kinds(replies) == ["ack", "status"]
        assert loop.time() - start == pytest.approx(0.41, abs=1e-6)

    run_virtual(main())


def test_garbled_replies_fail_the_reply_parser() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")))
        play(wire.cushion, {"kind": "garble", "duration_s": 1})
        await asyncio.sleep(0)
        await wire.send(Keepalive(), Query())
        replies = await wire.receive()
        assert replies and set(kinds(replies)) == {"bad"}
        await advance(1)
        await wire.send(Keepalive())
        assert kinds(await wire.receive()) == ["ack"]

    run_virtual(main())


@pytest.mark.parametrize("name", ["lp4-ascii", "vb6-binary"])
def test_truncated_replies_are_cut_short_and_never_parse_as_sent(name: str) -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile(name)))
        full = wire.codec.encode_reply(Reply("ack"))
        play(wire.cushion, {"kind": "truncate", "duration_s": 1, "params": {"keep_bytes": 3}})
        await asyncio.sleep(0)
        await wire.send(Keepalive())
        replies = await wire.receive()
        assert wire.chunks == [full[:3]]
        assert Reply("ack") not in replies
        await advance(1)
        await wire.send(Keepalive(), Keepalive())
        # The cut-off bytes may spoil the next frame; the one after parses again.
        assert kinds(await wire.receive())[-1] == "ack"

    run_virtual(main())


def test_split_replies_arrive_in_pieces_and_still_parse() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("vb6-binary")))
        play(wire.cushion, {"kind": "split", "params": {"piece_bytes": 2, "gap_s": 0.01}})
        await asyncio.sleep(0)
        await wire.send(Query())
        replies = await wire.receive(0.5)
        status = wire.codec.encode_reply(replies[0]) if isinstance(replies[0], Reply) else b""
        assert kinds(replies) == ["status"]
        assert b"".join(wire.chunks) == status
        assert [len(c) for c in wire.chunks] == [2] * (len(status) // 2) + [len(status) % 2] * (
            len(status) % 2
        )

    run_virtual(main())


def test_nak_refuses_every_command_but_spares_the_stop() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")))
        await wire.send(SetZone(0, 5))
        assert await wire.receive() == [Reply("ack")]
        play(wire.cushion, {"kind": "nak", "duration_s": 10, "params": {"code": 3}})
        await asyncio.sleep(0)
        await wire.send(SetZone(1, 5), Keepalive(), Query())
        nak = Reply("nak", {"code": 3})
        assert await wire.receive() == [nak, nak, nak]
        assert wire.cushion.state.commanded == (5, 0, 0, 0)
        await wire.send(Stop())
        assert await wire.receive() == [Reply("ack")]
        assert wire.cushion.state.commanded == (0, 0, 0, 0)

    run_virtual(main())


def test_nak_can_refuse_the_stop_too_and_is_silent_without_a_nak_frame() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")))
        await wire.send(SetZone(0, 5))
        play(wire.cushion, {"kind": "nak", "params": {"spare_stop": False}})
        await asyncio.sleep(0)
        await wire.send(Stop())
        assert await wire.receive() == [Reply("ack"), Reply("nak", {"code": 2})]
        assert wire.cushion.state.commanded[0] == 5
        stepper = Wire(SimulatedCushion(load_profile("remote-stepper")))
        play(stepper.cushion, {"kind": "nak"})
        await asyncio.sleep(0)
        await stepper.send(Press("intensity_up"))
        assert await stepper.receive() == []
        assert stepper.cushion.state.commanded == (0,)
        assert stepper.cushion.recorder.count("refused") == 1

    run_virtual(main())


@pytest.mark.parametrize("name", ["lp4-ascii", "vb6-binary", "remote-stepper"])
def test_reset_forgets_outputs_and_the_next_status_shows_the_fresh_state(name: str) -> None:
    profile = load_profile(name)

    async def main() -> None:
        wire = Wire(SimulatedCushion(profile))
        if profile.control == "stepping":
            await wire.send(Press("intensity_up"))
            await advance(0.3)
            await wire.send(Press("next_mode"))
        else:
            await wire.send(
                SetAll((3,) * len(profile.zones)) if profile.supports("set_all") else SetZone(0, 3)
            )
        await advance(0.3)
        await wire.send(Query())
        before = (await wire.receive())[-1]
        assert isinstance(before, Reply) and before.kind == "status"
        assert isinstance(before, Reply) and any(before.fields.values())
        fresh = SimulatedCushion(profile).firmware.status_fields(0.0)
        assert before.fields != fresh
        play(wire.cushion, {"kind": "reset", "duration_s": 0.5})
        await asyncio.sleep(0)
        assert not any(wire.cushion.state.commanded) and not wire.cushion.state.powered
        await wire.send(Query())
        assert await wire.receive() == []  # booting: deaf
        await advance(0.5)
        await wire.send(Query())
        # Booted: the boot frame first, where the profile has one, then the fresh status.
        boot = [Reply("boot")] if profile.supports("boot") else []
        assert await wire.receive() == [*boot, Reply("status", fresh)]
        rec = wire.cushion.recorder
        assert [e.kind for e in rec if e.kind in ("fault", "reboot")] == [
            "fault",
            "reboot",
            "fault",
            "fault",
        ]  # reset begins, reboot, the boot's deaf window begins and ends
        assert [e.detail for e in rec.of("fault")] == [
            ("reset", "begin"),
            ("deaf", "begin"),
            ("deaf", "end"),
        ]

    run_virtual(main())


def test_ignore_commands_acks_but_keeps_outputs_even_on_stop() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")))
        await wire.send(SetZone(0, 5))
        play(wire.cushion, {"kind": "ignore_commands", "at_s": 0.1, "duration_s": 5})
        await advance(0.2)
        await wire.send(SetZone(1, 7), Stop())
        assert await wire.receive() == [Reply("ack")] * 3
        assert wire.cushion.state.commanded == (5, 0, 0, 0)
        await advance(5)
        await wire.send(Stop())
        await asyncio.sleep(0)
        assert wire.cushion.state.commanded == (0, 0, 0, 0)

    run_virtual(main())


def test_overheat_reads_in_the_state_and_in_a_status_with_a_temperature(tmp_path: Path) -> None:
    source = builtin_profiles()["lp4-ascii"]
    text = source.read_text(encoding="utf-8").replace(
        'text = "S{level:02d}F{frequency}H{heat}\\r\\n"',
        'text = "S{level:02d}F{frequency}H{heat}T{temp_c:03d}\\r\\n"',
    )
    assert "T{temp_c" in text
    path = tmp_path / "lp4-temp.toml"
    path.write_text(text.replace('name = "lp4-ascii"', 'name = "lp4-temp"'), encoding="utf-8")
    profile = load_profile(path)

    async def main() -> None:
        wire = Wire(SimulatedCushion(profile))
        play(
            wire.cushion, {"kind": "overheat", "at_s": 1, "duration_s": 1, "params": {"temp_c": 47}}
        )
        await wire.send(Query())
        (cool,) = await wire.receive()
        assert isinstance(cool, Reply) and cool.fields["temp_c"] == 24
        await advance(1)
        assert wire.cushion.state.surface_temp_c == 47
        await wire.send(Query())
        (status,) = await wire.receive()
        assert isinstance(status, Reply) and status.fields["temp_c"] == 47
        await advance(1)
        assert wire.cushion.state.surface_temp_c == pytest.approx(24)

    run_virtual(main())


def test_a_full_input_buffer_loses_the_bytes_beyond_it() -> None:
    async def main() -> None:
        wire = Wire(SimulatedCushion(load_profile("lp4-ascii")))
        frame = wire.codec.encode(Keepalive())  # "PING*xx\r\n", 9 bytes
        play(wire.cushion, {"kind": "rx_buffer", "params": {"size": 20, "bytes_per_s": 90}})
        await asyncio.sleep(0)
        await wire.link.write(frame * 4)  # 36 bytes at once: 20 fit, 16 are lost
        rec = wire.cushion.recorder
        assert rec.of("rx_overflow")[0].detail == 16
        assert sum(isinstance(c, Keepalive) for c in rec.commands()) == 2
        await advance(0.2)  # 18 bytes drained: two more frames fit
        await wire.link.write(frame * 2)
        # The two bytes of the frame that did not fit spoil the first of them (no line end).
        assert sum(isinstance(c, Keepalive) for c in rec.commands()) == 3
        assert rec.count("bad_frame") == 1 and rec.count("rx_overflow") == 1

    run_virtual(main())


def test_hang_up_closes_the_in_process_link_and_the_cushion_stays_out_of_reach() -> None:
    async def main() -> None:
        cushion = SimulatedCushion(load_profile("lp4-ascii"))
        wire = Wire(cushion)
        pending = asyncio.ensure_future(wire.link.read())
        play(cushion, {"kind": "hang_up", "at_s": 1, "duration_s": 2})
        await advance(1)
        with pytest.raises(ConnectionError):
            await pending
        with pytest.raises(ConnectionError):
            await wire.link.write(wire.codec.encode(Keepalive()))
        again = Wire(cushion)  # a controller reconnects at once ...
        await again.send(SetZone(0, 4), Query())
        assert await again.receive(1.0) == []  # ... but nothing gets through
        assert cushion.state.commanded[0] == 0
        await advance(1)
        await again.send(SetZone(0, 4))
        assert await again.receive() == [Reply("ack")]
        links = [e.detail for e in cushion.recorder.of("link")]
        assert links == ["connected", "hangup by device", "disconnected", "connected"]

    run_virtual(main())


# -- the PTY link (real clock, bounded polls) --------------------------------------------------


async def _until(condition: object, what: str, limit_s: float = 5.0) -> None:
    assert callable(condition)
    for _ in range(int(limit_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.mark.realtime
def test_hang_up_on_a_pty_fails_the_controllers_read_then_a_new_pty_serves() -> None:
    async def main() -> None:
        cushion = SimulatedCushion(load_profile("vb6-binary"))
        codec = Codec(cushion.profile)
        ports: list[str] = []
        stop = asyncio.Event()
        schedule = FaultSchedule.of(
            {"kind": "hang_up", "after": "command:Stop", "duration_s": 0.05}
        )
        server = asyncio.create_task(
            run_standalone(
                cushion.profile,
                cushion=cushion,
                on_ready=ports.append,
                faults=schedule,
                stop_event=stop,
            )
        )
        await _until(lambda: bool(ports), "the port")
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=ports[0], baudrate=115200
        )
        writer.write(codec.encode(Stop()))
        await writer.drain()
        with pytest.raises(serial.SerialException):
            while True:  # the ack may come first; then the hang-up
                await asyncio.wait_for(reader.read(64), 5.0)
        writer.close()
        await _until(lambda: len(ports) == 2, "the pty to open again")
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=ports[1], baudrate=115200
        )
        writer.write(codec.encode(Query()))
        await writer.drain()
        parser = codec.reply_parser()
        got: list[object] = []
        while not got:
            got.extend(parser.feed(await asyncio.wait_for(reader.read(64), 5.0)))
        assert isinstance(got[0], Reply) and got[0].kind == "status"
        writer.close()
        stop.set()
        await asyncio.wait_for(server, 5.0)
        links = [e.detail for e in cushion.recorder.of("link")]
        assert links[:3] == ["connected", "hangup by device", "disconnected"]
        assert "connected" in links[3:]

    asyncio.run(main())


@pytest.mark.realtime
def test_pty_link_without_down_time_stays_closed() -> None:
    async def main() -> None:
        cushion = SimulatedCushion(load_profile("lp4-ascii"))
        async with PtyLink(cushion) as link:
            cushion.hang_up()
            await asyncio.sleep(0.05)
            assert link.port and not link.connected
            assert cushion.on_transmit is None

    asyncio.run(main())

"""The live display as a person uses it: the real `cushion run` in a real pseudo-terminal.

Keys go in through pexpect; the checks read the screen and, independently, what reached
the cushion: either a simulated cushion this test runs on a pty of its own (its recorder
sees every byte), or the session journal. No assertion depends on wall-clock speed; the
waits are generous because the machine may be loaded.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pexpect  # type: ignore[import-untyped]
import pytest

from controller.journal import EventRow, Journal
from firmware_profiles import load_profile
from firmware_profiles.commands import Stop
from hil.cushion import SimulatedCushion
from hil.ptylink import PtyLink

pytestmark = pytest.mark.realtime

CUSHION = str(Path(sys.executable).with_name("cushion"))
WAIT_S = 60.0
PROFILE = "vb6-binary"  # 255 levels: outputs reach the wire within a second of the start


@functools.cache
def _skip_questions() -> tuple[str, ...]:
    """Return `--yes` where `cushion run` has it (the screening questions before a session)."""
    done = subprocess.run([CUSHION, "run", "--help"], capture_output=True, text=True, timeout=60)
    return ("--yes",) if "--yes" in done.stdout else ()


def _spawn(args: list[str], journal: Path | None = None) -> pexpect.spawn:
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    if journal is not None:
        env["CUSHION_JOURNAL"] = str(journal)
    child = pexpect.spawn(
        CUSHION,
        ["run", *args, *_skip_questions()],
        env=env,
        dimensions=(40, 120),
        encoding="utf-8",
        codec_errors="replace",
        timeout=WAIT_S,
    )
    return child


def _screen(child: pexpect.spawn, pattern: str) -> None:
    """Wait until the screen shows `pattern` (answering 'no' to any question before it)."""
    while True:
        i = child.expect([pattern, r"\[y/N\]|\(y/n\)|\[y/n\]", pexpect.EOF], timeout=WAIT_S)
        if i == 0:
            return
        if i == 2:
            raise AssertionError(f"ended before {pattern!r}: {str(child.before)[-600:]!r}")
        child.send("n\r")


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _ended(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF, timeout=WAIT_S)
    child.close()
    assert child.exitstatus is not None, child.signalstatus
    return int(child.exitstatus)


class _Cushion:
    """A simulated cushion on a real pty, served by a loop on a thread of its own."""

    def __init__(self) -> None:
        self.cushion = SimulatedCushion(load_profile(PROFILE))
        self.port = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        async with PtyLink(self.cushion) as link:
            self.port = link.port
            self._ready.set()
            await self._done.wait()
            await asyncio.sleep(0.05)  # the last bytes reach the cushion's reader

    def __enter__(self) -> _Cushion:
        self._thread.start()
        assert self._ready.wait(WAIT_S), "the simulator did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._done is not None
        self._loop.call_soon_threadsafe(self._done.set)
        self._thread.join(WAIT_S)

    @property
    def on(self) -> bool:
        """Tell whether any motor runs now."""
        return any(self.cushion.state.commanded)

    @property
    def last_command(self) -> object:
        """Return the last command the cushion received."""
        return self.cushion.recorder.commands()[-1]

    def peak_levels_since(self, mark: int) -> list[int]:
        """Return the highest zone level after each level change recorded since `mark`."""
        levels = [0] * self.cushion.recorder.zone_count
        out: list[int] = []
        for i, e in enumerate(list(self.cushion.recorder.events)):
            if e.kind == "level":
                zone, level = cast("tuple[int, int]", e.detail)
                levels[zone] = level
                if i >= mark:
                    out.append(max(levels))
        return out


def _ends_all_off(events: list[EventRow]) -> None:
    """Check the journal: after the stop, the session ended and the all-off was sent."""
    stop = next(i for i, e in enumerate(events) if e.kind == "stop_requested")
    kinds = [e.kind for e in events[stop:]]
    assert "session_ended" in kinds and kinds[-1] in ("all_off", "session_ended"), kinds
    offs = [e.payload for e in events[stop:] if e.kind == "all_off"]
    assert offs and offs[-1]["sent"] is True, offs
    assert "setpoint" not in kinds[kinds.index("all_off") :], kinds  # nothing after it


def _on_port(sim: _Cushion, journal: Path | None = None) -> pexpect.spawn:
    return _spawn(["lumbar-short", "--port", sim.port, "--profile", PROFILE], journal)


def _close(child: pexpect.spawn) -> None:
    if child.isalive():
        child.terminate(force=True)


def test_space_pauses_to_zero_on_the_cushion_and_esc_cuts_everything() -> None:
    with _Cushion() as sim:
        child = _on_port(sim)
        try:
            _screen(child, "space pause")  # the footer names the keys
            _until(lambda: sim.on, "outputs on")
            child.send(" ")
            _screen(child, "paused - press space to continue")
            _until(lambda: not sim.on, "outputs off while paused")
            assert isinstance(sim.last_command, Stop)
            child.send(" ")
            _screen(child, "starting gently again")
            _until(lambda: sim.on, "outputs on again after the resume")
            child.send("\x1b")
            _screen(child, r"(stopping now|stopped): emergency stop \(Esc\)")
            code = _ended(child)
        finally:
            _close(child)
    assert code == 130
    assert isinstance(sim.last_command, Stop) and not sim.on


def test_arrow_keys_do_not_stop_and_q_does() -> None:
    with _Cushion() as sim:
        child = _on_port(sim)
        try:
            _screen(child, "space pause")
            _until(lambda: sim.on, "outputs on")
            for seq in ("\x1b[A", "\x1b[B", "\x1b[C", "\x1b[D", "\x1bOP", "\x1b[15~"):
                child.send(seq)
            # Still running after them: a pause proves the keys are read, and nothing stopped.
            child.send(" ")
            _screen(child, "paused - press space")
            assert "stopping" not in str(child.before)
            child.send("q")
            _screen(child, r"(stopping now|stopped): emergency stop \(q\)")
            code = _ended(child)
        finally:
            _close(child)
    assert code == 130
    assert isinstance(sim.last_command, Stop) and not sim.on


def test_ctrl_c_ramps_down_then_all_off() -> None:
    with _Cushion() as sim:
        child = _on_port(sim)
        try:
            _screen(child, "space pause")
            _until(lambda: sim.cushion.recorder.max_level() >= 12, "outputs up to 12 levels")
            mark = len(sim.cushion.recorder.events)
            child.sendintr()
            _screen(child, r"stopping gently: interrupted \(Ctrl-C\)")
            code = _ended(child)
        finally:
            _close(child)
    assert code == 130
    assert isinstance(sim.last_command, Stop) and not sim.on
    levels = sim.peak_levels_since(mark)
    ramp = levels[levels.index(max(levels)) :]  # from the last output of the plan on
    # A ramp: several steps down, never up, ending at zero (then the all-off frame).
    assert ramp[-1] == 0, levels
    assert all(b <= a for a, b in itertools.pairwise(ramp)), levels
    assert len(set(ramp)) >= 4, levels


def test_ctrl_c_twice_cuts_at_once(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with _Cushion() as sim:
        child = _on_port(sim, journal)
        try:
            _screen(child, "space pause")
            _until(lambda: sim.cushion.recorder.max_level() >= 12, "outputs up to 12 levels")
            child.sendintr()
            _screen(child, "stopping gently")
            child.sendintr()
            _screen(child, r"(stopping now|stopped): interrupted \(Ctrl-C twice\)")
            code = _ended(child)
        finally:
            _close(child)
    assert code == 130
    assert isinstance(sim.last_command, Stop) and not sim.on
    with Journal.open(journal) as opened:
        (row,) = opened.sessions()
        events = opened.events(row.id)
    stops = [e.payload for e in events if e.kind == "stop_requested"]
    assert [s["emergency"] for s in stops] == [False, True], stops
    assert row.outcome == "stopped" and row.exit_code == 130
    ended = next(e.payload for e in events if e.kind == "session_ended")
    assert ended["details"]["message"] == "interrupted (Ctrl-C twice)", ended
    _ends_all_off(events)


def test_plus_never_passes_the_plan_or_the_caps_and_s_stops_gently(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    child = _spawn(["lumbar-short", "--speed", "20"], journal)
    try:
        _screen(child, "strength: 100% as planned")
        child.send("-")
        _screen(child, "strength: 90% of the plan")
        child.send("-")
        _screen(child, "strength: 80% of the plan")
        for _ in range(5):
            child.send("+")  # three more than there is room for
        _screen(child, "strength: 100% as planned")
        _screen(child, "main part")  # past the gentle start, where the caps bind
        child.send("+=")
        _screen(child, "kneading|rubbing|squeezing|vibration|shaking")
        child.send("s")
        _screen(child, "stopping gently: stopped by the user")
        code = _ended(child)
    finally:
        _close(child)
    assert code == 0  # a stop with the ramp-down is a normal end
    with Journal.open(journal) as opened:
        (row,) = opened.sessions()
        events = opened.events(row.id)
    start = next(e.payload for e in events if e.kind == "session_started")
    scales = [round(e.payload["factor"], 6) for e in events if e.kind == "scale"]
    assert scales == [0.9, 0.8, 0.9, 1.0]  # never past 100 % of the plan
    sent = [e.payload for e in events if e.kind == "setpoint"]
    assert sent and max(max(s["intensity"]) for s in sent) > 0
    for s in sent:
        for value, cap in zip(s["intensity"], start["caps"], strict=True):
            assert value <= cap + 1e-9, (s, start["caps"])
    stop_at = next(i for i, e in enumerate(events) if e.kind == "stop_requested")
    assert events[stop_at].payload["emergency"] is False
    ramp = [max(e.payload["intensity"]) for e in events[stop_at:] if e.kind == "setpoint"]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(ramp)), ramp
    _ends_all_off(events)
    assert row.outcome == "stopped" and row.exit_code == 0


def test_the_terminal_is_restored_and_json_never_reads_stdin(tmp_path: Path) -> None:
    # Through a shell: after cushion exits, the shell reads what was typed during the run,
    # and `stty -a` says how cushion left the terminal.
    yes = " ".join(_skip_questions())
    script = (
        f"{CUSHION} run lumbar-short --speed 200 --json {yes} > {tmp_path / 'out.jsonl'}; "
        "echo exit=$?; read -r typed; echo typed=[$typed]; "
        f"{CUSHION} run lumbar-short --speed 20 {yes}; echo exit=$?; stty -a"
    )
    env = {**os.environ, "TERM": "xterm-256color"}
    child = pexpect.spawn(
        "/bin/sh", ["-c", script], env=env, dimensions=(40, 120), encoding="utf-8", timeout=WAIT_S
    )
    try:
        # The JSON run: keys typed now stay for the shell (cushion never reads them).
        child.send("q s\r")
        child.expect(r"exit=(\d+)")
        assert child.match.group(1) == "0", child.before
        child.expect(r"typed=\[(.*?)\]")
        assert child.match.group(1) == "q s"
        # The live run reads its keys in cbreak mode; afterwards echo and icanon are back.
        _screen(child, "space pause")
        child.send(" ")
        _screen(child, "paused")
        child.send("s")
        child.expect(r"exit=(\d+)")
        assert child.match.group(1) == "0"
        child.expect(pexpect.EOF)
        modes = str(child.before)
    finally:
        _close(child)
    assert re.search(r"(?<!-)\bicanon\b", modes) and re.search(r"(?<!-)\becho\b", modes), modes

"""Bluetooth LE end to end: scan, run, link loss and reconnection through bleak and bumble."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

from controller.device import Device
from controller.events import Event, LinkDown, LinkUp, Resumed, SessionEnded
from controller.limits import DEFAULT_LIMITS
from controller.runner import plan, sim_ble_transport
from controller.session import Session
from controller.transports.base import Endpoint
from firmware_profiles import load_profile
from firmware_profiles.commands import Stop
from hil.cushion import SimulatedCushion
from hil.vtime import run_virtual
from protocols import load_program
from tests.invariants import assert_wire_respects_envelope, wire_points
from tests.support import Run, advance
from tests.test_cli import CLI, cushion


def test_scan_finds_the_simulated_cushions_and_names_their_profiles() -> None:
    done = cushion("scan", "--sim", "--timeout", "1", "--json")
    assert done.returncode == 0, done.stderr
    found = {d["name"]: d for d in map(json.loads, done.stdout.splitlines())}
    assert found["VB6-SIM"]["profiles"] == ["vb6-binary"]
    assert found["NU4-SIM"]["profiles"] == ["nus-text"]
    assert found["VB6-SIM"]["identity"] == f"ble:{found['VB6-SIM']['address']}#vb6-binary"


def test_run_over_ble_picks_the_profile_and_respects_the_envelope() -> None:
    done = cushion("run", "lumbar-short", "--ble", "VB6-SIM", "--sim", "--speed", "max", "--json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["profile"] == "vb6-binary"
    setpoints = [e for e in events if e["kind"] == "setpoint"]
    assert setpoints and not any(setpoints[-1]["intensity"])
    for e in setpoints:
        assert all(v <= c + 1e-9 for v, c in zip(e["intensity"], events[0]["caps"], strict=True))


def test_ble_faults_exit_3_with_a_hint() -> None:
    missing = cushion("run", "lumbar-short", "--ble", "NOPE", "--sim", "--speed", "max")
    assert missing.returncode == 3 and "cushion scan" in missing.stderr
    # No Bluetooth service on this machine: a real scan fails with an explanation.
    real = cushion("scan", "--timeout", "1")
    assert real.returncode == 3 and "Traceback" not in real.stderr
    assert "--sim" in real.stderr


def test_link_loss_over_ble_pauses_reconnects_and_ramps_from_zero() -> None:
    from hil.ble import SimBleWorld

    profile = load_profile("vb6-binary")
    program = load_program("lumbar-short")
    sim = SimulatedCushion(profile)
    events: list[Event] = []

    async def main() -> object:
        async with SimBleWorld() as world:
            peripheral = await world.add_cushion(sim)
            endpoint = Endpoint("ble", peripheral.address, {"sim": "1"})
            transport = sim_ble_transport(endpoint, profile, world)
            async with Device(
                transport, profile, DEFAULT_LIMITS, emit=events.append, reconnect=True
            ) as device:
                session = Session(
                    plan(program, profile, DEFAULT_LIMITS),
                    device,
                    emit=events.append,
                    auto_resume=True,
                )
                task = asyncio.create_task(session.run())
                await advance(400)
                assert any(sim.state.commanded)
                await peripheral.disconnect()  # out of range for a moment
                return await task

    result = run_virtual(main())
    run = Run(result, events, sim, profile, program)  # type: ignore[arg-type]
    assert run.result.exit_code == 0
    down, up = run.of(LinkDown)[0], run.of(LinkUp)[0]
    assert 0 < up.t_s - down.t_s < 5
    assert run.of(Resumed)[0].t_s >= up.t_s
    rec = sim.recorder
    reconnected = up.t_s + (rec.of("command")[0].t - 0.0)  # session and recorder share a clock
    first_after = [e.detail for e in rec.of("command") if e.t >= reconnected - 1e-6]
    assert isinstance(first_after[0], Stop)  # all-off first on the new link
    after = [(t, v) for t, v in wire_points(rec, 255) if t > reconnected]
    assert after[0][1] <= 0.01 and after[0][0] - reconnected < 1.0  # ramping again within 1 s
    assert_wire_respects_envelope(run, DEFAULT_LIMITS)
    assert run.of(SessionEnded)[0].outcome == "done"


# Quick limits for a real-time run: steep ramps (the final ramp-down may only be lengthened,
# so it keeps its default and spans the short program's end instead).
FAST_BLE = "[limits]\nallow_raise = true\nramp_per_s = 0.04\n"


def test_run_against_a_standalone_ble_simulator(tmp_path: Path) -> None:
    from tests.test_pty import TINY

    proc = subprocess.Popen(
        [*CLI, "sim", "--ble"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        radio = proc.stdout.readline().strip()
        assert radio.startswith("tcp-client:127.0.0.1:")
        program, config = tmp_path / "tiny.toml", tmp_path / "config.toml"
        program.write_text(TINY)
        config.write_text(FAST_BLE)
        done = cushion(
            "run",
            str(program),
            "--ble",
            "VB6-SIM",
            "--radio",
            radio,
            "--json",
            "--config",
            str(config),
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        events = [json.loads(line) for line in done.stdout.splitlines()]
        assert events[0]["profile"] == "vb6-binary"
        assert any(e["kind"] == "setpoint" and any(e["levels"]) for e in events)
        refused = cushion(
            "run", str(program), "--ble", "VB6-SIM", "--radio", radio, "--speed", "max"
        )
        assert refused.returncode == 2 and "own clock" in refused.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)


def test_settings_follow_the_device_by_address(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[device."f0:ca:00:00:00:02"]\nmax_intensity = 0.4\n')
    done = cushion(
        "run",
        "lumbar-short",
        "--ble",
        "VB6-SIM",
        "--sim",
        "--speed",
        "max",
        "--json",
        "--config",
        str(config),
    )
    assert done.returncode == 0, done.stderr
    start = json.loads(done.stdout.splitlines()[0])
    assert start["caps"] == [0.3, 0.3, 0.4, 0.4, 0.4, 0.4]
    assert start["endpoint"].startswith("ble:F0:CA:00:00:00:02")

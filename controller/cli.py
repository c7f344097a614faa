"""The `cushion` command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from controller.configcli import config_group, screening_command
from controller.errors import DeviceError, SafetyStop, UsageError
from controller.history import history
from controller.session import EXIT_BAD_INPUT, EXIT_DEVICE, EXIT_INTERRUPTED, EXIT_SAFETY
from protocols.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_SIM_PROFILE = "lp4-ascii"
DEFAULT_BLE_PROFILE = "vb6-binary"
# A scaled clock outside this range is either frozen or a virtual run in disguise: past 1000x
# the real-time parts (pty, reply floors) dominate; 'max' is the virtual clock for that.
MIN_SPEED, MAX_SPEED = 0.1, 1000.0
# Prose wraps at word boundaries on a terminal (soft_wrap off) and stays one line elsewhere,
# so pipes, logs and tests see each paragraph whole.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def friendly(func: F) -> F:
    """Turn expected errors into one clear paragraph and the documented exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            # A message may quote brackets (pip install 'cushion[plot]'): not markup.
            err.print(f"[bold red]error:[/] {escape(exc.describe())}", markup=True,
                soft_wrap=not err.is_terminal)
            sys.exit(EXIT_BAD_INPUT)
        except DeviceError as exc:
            err.print(f"[bold red]device error:[/] {exc}", markup=True,
                soft_wrap=not err.is_terminal)
            sys.exit(EXIT_DEVICE)
        except SafetyStop as exc:
            err.print(f"[bold red]stopped for safety:[/] {exc}", markup=True,
                soft_wrap=not err.is_terminal)
            sys.exit(EXIT_SAFETY)
        except KeyboardInterrupt:
            err.print("interrupted")
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def _speed(value: str | None) -> float | None:
    if value is None:
        return None
    if value.lower() == "max":
        return math.inf
    try:
        speed = float(value)
    except ValueError:
        speed = -1.0
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise UsageError(
            f"--speed {value} is not a speed the simulator can run at.",
            key="--speed",
            hint=f"Give a factor from {MIN_SPEED:g} to {MAX_SPEED:g} (26 runs 26 times faster "
            "than real time), or 'max' for as fast as possible.",
        )
    return speed


@click.group()
@click.version_option(package_name="cushion")
def main() -> None:
    """Cushion: run massage programs on back-massage cushions, safely."""


@main.command()
@click.option("--long", "long_form", is_flag=True, help="Also each summary, notes and "
              "contraindications.")
@friendly
def programs(long_form: bool) -> None:
    """List the built-in massage programs and your own (see docs/programs.md)."""
    from controller.planview import print_contraindications
    from protocols import builtin_programs, load_program
    from protocols.loader import shadowed_programs, user_programs

    found = {**{n: "built-in" for n in builtin_programs()}, **{n: "yours" for n in user_programs()}}
    table = Table("name", "length", "title", "from", box=None)
    for name in sorted(found):
        prog = load_program(name)
        if long_form:
            out.print(f"[bold]{escape(name)}[/] ({found[name]}, {prog.duration_s / 60:.0f} min): "
                      f"{escape(prog.title)}", soft_wrap=not out.is_terminal)
            out.print(escape(prog.summary), soft_wrap=not out.is_terminal)
            for note in prog.notes():
                out.print(f"[yellow]warning:[/] {escape(note)}", soft_wrap=not out.is_terminal)
            print_contraindications(out, prog)
            out.print()
        else:
            table.add_row(name, f"{prog.duration_s / 60:.0f} min", prog.title, found[name])
    if not long_form:
        out.print(table)
    for name, path in shadowed_programs().items():
        err.print(f"note: {path} is not used: '{name}' is a built-in name (rename the file to use "
                  "it by name, or give its path).", soft_wrap=not err.is_terminal, markup=False)


@main.command()
@friendly
def profiles() -> None:
    """List the built-in cushion profiles."""
    from firmware_profiles import builtin_profiles, load_profile

    table = Table("name", "control", "zones", "title", box=None)
    for name in sorted(builtin_profiles()):
        prof = load_profile(name)
        table.add_row(name, prof.control, str(len(prof.zones)), prof.info.title)
    out.print(table)


def _limits(config: Path | None, max_intensity: float | None, sparing: bool) -> Any:
    from controller.config import load_config
    from controller.limits import narrow

    cfg, limits = load_config(config)
    changes: dict[str, Any] = {}
    if max_intensity is not None:
        if not 0 <= max_intensity <= 100:
            raise UsageError(
                f"--max-intensity {max_intensity:g} is not a percentage.",
                hint="Give a value from 0 to 100.",
            )
        changes["max_intensity"] = min(max_intensity / 100, limits.max_intensity)
    if sparing:
        changes["sparing"] = True
    return cfg, narrow(limits, changes) if changes else limits


@main.command()
@click.argument("program")
@click.option("--profile", "profile_name", help="Cushion profile: built-in name or file.")
@click.option("--config", type=click.Path(path_type=Path), help="Config file (TOML).")
@click.option("--max-intensity", type=float, help="Lower the overall cap, in percent.")
@click.option("--sparing", is_flag=True, help="Plan in sparing mode (first sessions).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--plot", type=click.Path(path_type=Path),
    help="Save a picture (PNG) of what the cushion will play; needs the 'plot' extra.",
)
@click.option(
    "--spark", is_flag=True, help="Show what the cushion will play as one line per body area."
)
@friendly
def plan(
    program: str,
    profile_name: str | None,
    config: Path | None,
    max_intensity: float | None,
    sparing: bool,
    as_json: bool,
    plot: Path | None,
    spark: bool,
) -> None:
    """Show what a program will do on a cushion, and where the envelope lowered it."""
    from controller.planview import plan_json, plot_plan, print_plan
    from controller.runner import plan as make_plan
    from firmware_profiles import load_profile
    from protocols import load_program

    cfg, limits = _limits(config, max_intensity, sparing)
    prog = load_program(program)
    prof = load_profile(profile_name or cfg.defaults.profile or DEFAULT_SIM_PROFILE)
    timeline = make_plan(prog, prof, limits)
    if as_json:
        out.print_json(json.dumps(plan_json(prog, prof, limits, timeline)))
    else:
        print_plan(out, prog, prof, limits, timeline)
    if spark:
        from controller.plot import spark_lines

        for line in spark_lines(prog, prof, limits, timeline, out.width):
            (err if as_json else out).print(line, markup=False, highlight=False, soft_wrap=True)
    if plot is not None:
        plot_plan(prog, prof, limits, timeline, plot)
        err.print(f"plot saved to {plot}", soft_wrap=not err.is_terminal, markup=False)


@main.command()
@click.argument("program")
@click.option("--profile", "profile_name", help="Cushion profile: built-in name or file.")
@click.option("--sim", "use_sim", is_flag=True, help="Run on the simulator (the default).")
@click.option("--port", help="Serial port of a real cushion, e.g. /dev/ttyUSB0.")
@click.option("--ble", "ble", help="Bluetooth LE cushion: address or advertised name.")
@click.option("--auto-resume", is_flag=True, help="After a lost link comes back, resume by itself.")
@click.option(
    "--radio", help="Reach simulated BLE cushions of a 'cushion sim --ble' at this moniker."
)
@click.option("--speed", help="Simulator clock speed: a factor, or 'max'. Simulator only.")
@click.option("--json", "as_json", is_flag=True, help="Write one JSON event per line to stdout.")
@click.option("--config", type=click.Path(path_type=Path), help="Config file (TOML).")
@click.option("--max-intensity", type=float, help="Lower the overall cap, in percent.")
@click.option("--sparing", is_flag=True, help="Sparing mode (first sessions).")
@click.option(
    "--yes", "skip_screening", is_flag=True,
    help="Ask no screening questions (an unattended rig); the journal records the skip.",
)
@friendly
def run(
    program: str,
    profile_name: str | None,
    use_sim: bool,
    port: str | None,
    ble: str | None,
    auto_resume: bool,
    radio: str | None,
    speed: str | None,
    as_json: bool,
    config: Path | None,
    max_intensity: float | None,
    sparing: bool,
    skip_screening: bool,
) -> None:
    """Run a massage program on a cushion (the simulator unless --port or --ble is given)."""
    from controller.runner import RunOptions
    from controller.transports.base import Endpoint, parse_endpoint
    from firmware_profiles import load_profile
    from protocols import load_program

    cfg, limits = _limits(config, max_intensity, sparing)
    factor = _speed(speed)
    if use_sim and port:
        raise UsageError("--sim and --port exclude each other.", hint="Choose one.")
    if ble and port:
        raise UsageError("--ble and --port exclude each other.", hint="Choose one.")
    port = None if use_sim or ble else (port or cfg.defaults.port)
    prog = load_program(program)
    for warning_text in prog.notes():  # the article's rules this program breaks; it still runs
        err.print(f"[yellow]warning:[/] {warning_text}", markup=True, soft_wrap=not err.is_terminal)
    if ble:
        if radio is not None and factor is not None and factor != 1:
            raise UsageError(
                "--speed cannot apply to a standalone simulator: it runs on its own clock, "
                "in real time, like a real cushion.",
                hint="Drop --speed, or use --sim to run cushion and controller in one process.",
            )
        if not use_sim and factor is not None and factor != 1:
            raise UsageError(
                "--speed only applies to the simulator: a real cushion always runs in real time.",
                hint="Drop --speed, or add --sim to use the simulated BLE cushions.",
            )
        screened = _screen(prog, config, cfg, limits, skip_screening, as_json)
        code = _run_ble(
            prog,
            ble,
            profile_name,
            cfg,
            screened.limits,
            use_sim or radio is not None,
            radio,
            factor,
            auto_resume,
            as_json,
            screening_skipped=screened.skipped,
        )
        sys.exit(code)
    if port:
        if factor is not None and factor != 1:
            raise UsageError(
                "--speed only applies to the simulator: a real cushion always runs in real time.",
                hint="Drop --speed, or use --sim.",
            )
        if not (profile_name or cfg.defaults.profile):
            raise UsageError(
                "a real cushion needs its profile.",
                hint="Add --profile NAME (see 'cushion profiles').",
            )
        endpoint = parse_endpoint(port)
    else:
        endpoint = Endpoint(
            "sim" if factor == math.inf else "sim+pty",
            profile_name or cfg.defaults.profile or DEFAULT_SIM_PROFILE,
        )
    prof = load_profile(profile_name or cfg.defaults.profile or DEFAULT_SIM_PROFILE)
    options = RunOptions(endpoint, factor, auto_resume=auto_resume)
    screened = _screen(prog, config, cfg, limits, skip_screening, as_json)

    async def go(emit: Any) -> int:
        return _report(
            await _journaled(
                prog, prof, screened.limits, options, emit, screening_skipped=screened.skipped
            )
        )

    sys.exit(_drive(go, factor, as_json))


def _screen(
    prog: Any, config: Path | None, cfg: Any, limits: Any, skip: bool, as_json: bool
) -> Any:
    """Ask the screening questions that are due (only on a terminal) and apply the answers."""
    from controller.keys import answering
    from controller.screening import Asker, gate, screening_for

    # Never read stdin that is not a terminal, nor talk over a --json stream.
    terminal = not as_json and sys.stdin.isatty() and sys.stderr.isatty()
    if not terminal:
        screened = gate(prog, screening_for(config, cfg), limits, skip=skip, asker=None)
    else:
        with answering(sys.stdin.fileno()) as key:
            screened = gate(prog, screening_for(config, cfg), limits, skip=skip,
                            asker=Asker(err, key))
    for note in screened.notes:
        err.print(f"note: {note}", soft_wrap=not err.is_terminal, markup=False)
    return screened


async def _journaled(
    prog: Any,
    prof: Any,
    limits: Any,
    options: Any,
    emit: Any,
    *,
    transport: Any = None,
    screening_skipped: bool = False,
) -> Any:
    """Run a program with every event also kept in the session journal (see docs/journal.md)."""
    from controller.journaled import run_journaled

    return await run_journaled(prog, prof, limits, options, emit, say=_say, transport=transport,
                               screening_skipped=screening_skipped)


def _say(text: str, *, warning: bool = False) -> None:
    """Print a run's note (plain) or warning (marked) on stderr."""
    if warning:
        err.print(f"[yellow]warning:[/] {text}", markup=True, soft_wrap=not err.is_terminal)
    else:
        err.print(text, markup=False, soft_wrap=not err.is_terminal)


def _report(result: Any) -> int:
    from controller.display import all_off_text

    off = result.all_off
    if result.exit_code == EXIT_DEVICE:
        err.print(f"[bold red]device error:[/] {result.message}", markup=True,
            soft_wrap=not err.is_terminal)
    elif result.exit_code == EXIT_SAFETY:
        err.print(f"[bold red]stopped for safety:[/] {result.message}", markup=True,
            soft_wrap=not err.is_terminal)
    if off is not None and (result.exit_code != 0 or not off.sent or off.confirmed is False):
        err.print(all_off_text(off).capitalize(), soft_wrap=not err.is_terminal)
    return int(result.exit_code)


def _drive(go: Callable[[Any], Any], factor: float | None, as_json: bool) -> int:
    """Run `go(emit)` on the loop for this speed, with the display the output calls for."""
    import contextvars

    from controller.clock import loop_factory
    from controller.display import JsonLines, LiveDisplay, PlainLines
    from controller.keys import STDIN, Keyboard

    context = contextvars.copy_context()
    try:
        with asyncio.Runner(loop_factory=loop_factory(factor)) as runner:
            if as_json:
                context.run(STDIN.set, False)  # a JSON stream never reads stdin
                return int(runner.run(go(JsonLines()), context=context))
            if err.is_terminal and factor != math.inf:
                # Keys only with the live display on a terminal.
                keyboard = Keyboard(sys.stdin.fileno()) if sys.stdin.isatty() else None
                context.run(STDIN.set, keyboard or False)
                with LiveDisplay(err, keys=keyboard is not None) as live:
                    return int(runner.run(go(live), context=context))
            return int(runner.run(go(PlainLines(err))))
    finally:
        _quiet_closed_stdout()


def _quiet_closed_stdout() -> None:
    """After `--json | head -1`, keep Python's exit flush from a BrokenPipe traceback."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _run_ble(
    prog: Any,
    target: str,
    profile_name: str | None,
    cfg: Any,
    limits: Any,
    use_sim: bool,
    radio: str | None,
    factor: float | None,
    auto_resume: bool,
    as_json: bool,
    *,
    screening_skipped: bool = False,
) -> int:
    """Find the BLE cushion (choosing its profile when exactly one matches) and run on it."""
    from controller.discovery import known_profiles, pick_profile, scan
    from controller.limits import narrow
    from controller.runner import RunOptions, sim_ble_transport, simulated_ble_world
    from controller.transports.base import Endpoint
    from controller.transports.ble import BleTransport, is_address
    from firmware_profiles import load_profile

    async def go(emit: Any) -> int:
        async with contextlib.AsyncExitStack() as stack:
            backend: dict[str, Any] = {}
            world = None
            if use_sim:
                from hil.ble import SimBleakScanner

                world = await stack.enter_async_context(simulated_ble_world(radio))
                backend = {"backend": SimBleakScanner, "world": world}
            seen = await scan(3.0, known_profiles(), **backend)
            wanted = target.upper() if is_address(target) else target
            hit = next(
                (
                    f
                    for f in seen
                    if (f.address.upper() if is_address(target) else f.name) == wanted
                ),
                None,
            )
            if hit is None:
                raise DeviceError(
                    f"no Bluetooth cushion '{target}' was found.",
                    hint="Is it on and in range? Try 'cushion scan'.",
                )
            # Settings follow the device: its address (stable across sessions) picks them.
            kept = cfg.for_device(hit.address)
            name = profile_name or kept.profile or cfg.defaults.profile
            name = pick_profile(hit, name)
            narrowing = kept.narrowing(limits)
            device_limits = narrow(limits, narrowing) if narrowing else limits
            prof = load_profile(name)
            endpoint = Endpoint("ble", hit.address, {"sim": "1"} if use_sim else {})
            transport = (
                sim_ble_transport(endpoint, prof, world)
                if world is not None
                else BleTransport(endpoint, prof)
            )
            options = RunOptions(endpoint, factor, auto_resume=auto_resume)
            return _report(
                await _journaled(
                    prog,
                    prof,
                    device_limits,
                    options,
                    emit,
                    transport=transport,
                    screening_skipped=screening_skipped,
                )
            )
        raise AssertionError("unreachable")  # pragma: no cover

    return _drive(go, factor, as_json)


@main.command("scan")
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=5.0,
    show_default=True,
    help="How long to listen, in seconds.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per device.")
@click.option("--sim", "use_sim", is_flag=True, help="Scan the simulated BLE cushions.")
@click.option("--radio", help="Scan the radio of a 'cushion sim --ble' at this moniker.")
@friendly
def scan_command(timeout_s: float, as_json: bool, use_sim: bool, radio: str | None) -> None:
    """List nearby Bluetooth LE cushions and the profile each one matches."""
    from controller.discovery import Found, known_profiles, scan
    from controller.runner import simulated_ble_world

    if not 0.1 <= timeout_s <= 600:  # False for nan too
        raise UsageError(
            f"--timeout {timeout_s:g} is not a listening time.",
            key="--timeout",
            hint="Give seconds from 0.1 to 600.",
        )

    async def go() -> list[Found]:
        profiles = known_profiles()
        if not use_sim and radio is None:
            return await scan(timeout_s, profiles)
        from hil.ble import SimBleakScanner

        async with simulated_ble_world(radio) as world:
            return await scan(timeout_s, profiles, backend=SimBleakScanner, world=world)

    found = asyncio.run(go())
    if as_json:
        for f in found:
            click.echo(
                json.dumps(
                    {
                        "address": f.address,
                        "name": f.name,
                        "rssi": f.rssi,
                        "profiles": list(f.profiles),
                        "identity": f.identity,
                    }
                )
            )
        return
    table = Table("address", "name", "rssi", "profile", box=None)
    for f in found:
        table.add_row(f.address, f.name or "?", str(f.rssi), ", ".join(f.profiles) or "-")
    out.print(table if found else "no Bluetooth devices found")


@main.command()
@click.option("--profile", "profile_name", help="Cushion profile the simulator speaks.")
@click.option("--ble", "use_ble", is_flag=True, help="Serve over BLE instead of a pseudo-terminal.")
@click.option("--transport", help="With --ble: a real Bluetooth controller, e.g. usb:0.")
@click.option(
    "--faults",
    "faults_file",
    metavar="FILE",
    help="Play a fault schedule (TOML [[fault]] tables or JSON; see docs/reliability.md).",
)
@friendly
def sim(
    profile_name: str | None, use_ble: bool, transport: str | None, faults_file: str | None
) -> None:
    """Run a simulated cushion (pty, or BLE with --ble) and print how to reach it."""
    from firmware_profiles import load_profile
    from hil.cushion import SimulatedCushion
    from hil.faults import FaultPlayer, apply_schedule, load_schedule

    prof = load_profile(profile_name or (DEFAULT_BLE_PROFILE if use_ble else DEFAULT_SIM_PROFILE))
    schedule = load_schedule(faults_file) if faults_file is not None else None
    cushion = SimulatedCushion(prof)
    players: list[FaultPlayer] = []

    def announce(where: str) -> None:
        if schedule is not None and not players:
            # Once, when the cushion is first reachable (a hang_up's new pty announces again).
            players.append(apply_schedule(cushion, schedule))
        out.print(where)
        sys.stdout.flush()
        if use_ble and transport is None:
            hint = f"cushion scan --radio {where}"
        elif use_ble:
            hint = f"cushion run lumbar-classic --ble {where}"
        else:
            hint = f"cushion run lumbar-classic --port {where} --profile {prof.name}"
        err.print(f"simulated {prof.name} at {where}; try: {hint}   (Ctrl-C ends it)")

    if use_ble and prof.ble is None:
        raise UsageError(
            f"profile '{prof.name}' has no [ble] section.",
            hint=f"Use a BLE profile such as {DEFAULT_BLE_PROFILE}.",
        )
    try:
        if use_ble:
            from hil.ble import run_standalone_ble

            asyncio.run(
                run_standalone_ble(prof, transport=transport, on_ready=announce, cushion=cushion)
            )
        else:
            from hil.serve import run_standalone

            asyncio.run(run_standalone(prof, on_ready=announce, cushion=cushion))
    except KeyboardInterrupt:
        pass


def broker_login(func: F) -> F:
    """Add the broker's login options (password file, TLS files) to a command."""
    for option in reversed((
        click.option("--password-file", type=click.Path(path_type=Path),
                     help="File holding the broker password (else CUSHION_MQTT_PASSWORD)."),
        click.option("--tls-ca", type=click.Path(path_type=Path),
                     help="CA certificate file (TLS)."),
        click.option("--tls-cert", type=click.Path(path_type=Path),
                     help="Client certificate (TLS)."),
        click.option("--tls-key", type=click.Path(path_type=Path), help="Client key (TLS)."),
    )):
        func = option(func)
    return func


@main.command()
@click.option("--mqtt", "mqtt_url", required=True, help="Broker: mqtt://[user@]host[:port].")
@click.option("--device", "devices", multiple=True,
              help="A cushion: sim:PROFILE, or serial:PORT?profile=NAME. Repeat for more.")
@click.option("--port", help="Serial port of one real cushion (with --profile).")
@click.option("--profile", "profile_name", help="Profile of the --port cushion.")
@click.option("--node-id", help="This node's id on the broker (default: the host name).")
@broker_login
@click.option("--config", type=click.Path(path_type=Path), help="Config file (TOML).")
@click.option("--max-intensity", type=float, help="Lower the overall cap, in percent.")
@click.option("--yes", "skip_screening", is_flag=True,
              help="Ask no screening questions (an unattended rig); the journal records it.")
@friendly
def serve(
    mqtt_url: str, devices: tuple[str, ...], port: str | None, profile_name: str | None,
    node_id: str | None, password_file: Path | None, tls_ca: Path | None,
    tls_cert: Path | None, tls_key: Path | None, config: Path | None,
    max_intensity: float | None, skip_screening: bool,
) -> None:
    """Put cushions on an MQTT broker: state, events, commands, Home Assistant (docs/mqtt.md)."""
    from controller.serve import serve_main

    cfg, limits = _limits(config, max_intensity, False)
    sys.exit(serve_main(
        mqtt_url, devices, port=port, profile_name=profile_name, node_id=node_id,
        password_file=password_file, tls=(tls_ca, tls_cert, tls_key), config_path=config,
        cfg=cfg, limits=limits, skip_screening=skip_screening,
    ))


@main.command()
@click.option("--mqtt", "mqtt_url", required=True, help="Broker: mqtt://[user@]host[:port].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per change, for scripts.")
@click.option("--once", is_flag=True, help="Print the fleet as it is now and exit.")
@click.option("--stop-all", is_flag=True, help="Stop every cushion on every node, and exit.")
@click.option("--reason", help="With --stop-all: why (the nodes' journals keep it).")
@broker_login
@friendly
def fleet(
    mqtt_url: str, as_json: bool, once: bool, stop_all: bool, reason: str | None,
    password_file: Path | None, tls_ca: Path | None, tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Every node and cushion on an MQTT broker, live; S stops them all (docs/mqtt.md)."""
    from controller.fleet import fleet_main

    sys.exit(fleet_main(mqtt_url, password_file=password_file, tls=(tls_ca, tls_cert, tls_key),
                        as_json=as_json, once=once, stop_all=stop_all, reason=reason))


@main.group()
def profile() -> None:
    """Check profiles and export their JSON Schema."""


@profile.command("check")
@click.argument("file")
@friendly
def profile_check(file: str) -> None:
    """Load a profile, exercise its codec on every frame it declares, and report."""
    from controller.checks import check_profile

    for line in check_profile(file):
        out.print(line)


@profile.command("schema")
def profile_schema() -> None:
    """Print the profile format's JSON Schema."""
    from firmware_profiles import profile_json_schema

    click.echo(json.dumps(profile_json_schema(), indent=2))


@main.group()
def program() -> None:
    """Check program files."""


@program.command("check")
@click.argument("file")
@click.option("--profile", "profile_name", default=DEFAULT_SIM_PROFILE, show_default=True)
@friendly
def program_check(file: str, profile_name: str) -> None:
    """Load a program, plan it for a profile and report what the envelope changed."""
    from controller.checks import check_program

    for line in check_program(file, profile_name):
        out.print(line)


main.add_command(history)
main.add_command(config_group)
main.add_command(screening_command)


if __name__ == "__main__":
    main()

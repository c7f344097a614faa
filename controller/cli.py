"""The `cushion` command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from controller.errors import DeviceError, SafetyStop, UsageError
from controller.session import EXIT_BAD_INPUT, EXIT_DEVICE, EXIT_INTERRUPTED, EXIT_SAFETY
from protocols.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_SIM_PROFILE = "lp4-ascii"
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def friendly(func: F) -> F:
    """Turn expected errors into one clear paragraph and the documented exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            err.print(f"[bold red]error:[/] {exc.describe()}", markup=True, soft_wrap=True)
            sys.exit(EXIT_BAD_INPUT)
        except DeviceError as exc:
            err.print(f"[bold red]device error:[/] {exc}", markup=True, soft_wrap=True)
            sys.exit(EXIT_DEVICE)
        except SafetyStop as exc:
            err.print(f"[bold red]stopped for safety:[/] {exc}", markup=True, soft_wrap=True)
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
    if not speed > 0 or math.isnan(speed):
        raise UsageError(
            f"--speed {value} is not a speed.",
            hint="Give a factor such as 26 (26 times real time) or 'max'.",
        )
    return speed


@click.group()
@click.version_option(package_name="cushion")
def main() -> None:
    """Cushion: run massage programs on back-massage cushions, safely."""


@main.command()
@friendly
def programs() -> None:
    """List the built-in massage programs."""
    from protocols import builtin_programs, load_program

    table = Table("name", "length", "title", box=None)
    for name in sorted(builtin_programs()):
        prog = load_program(name)
        table.add_row(name, f"{prog.duration_s / 60:.0f} min", prog.title)
    out.print(table)


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
@click.option("--plot", type=click.Path(path_type=Path), help="Save a PNG plot of the plan.")
@friendly
def plan(
    program: str,
    profile_name: str | None,
    config: Path | None,
    max_intensity: float | None,
    sparing: bool,
    as_json: bool,
    plot: Path | None,
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
    if plot is not None:
        plot_plan(timeline, prof, plot)
        err.print(f"plot saved to {plot}")


@main.command()
@click.argument("program")
@click.option("--profile", "profile_name", help="Cushion profile: built-in name or file.")
@click.option("--sim", "use_sim", is_flag=True, help="Run on the simulator (the default).")
@click.option("--port", help="Serial port of a real cushion, e.g. /dev/ttyUSB0.")
@click.option("--speed", help="Simulator clock speed: a factor, or 'max'. Simulator only.")
@click.option("--json", "as_json", is_flag=True, help="Write one JSON event per line to stdout.")
@click.option("--config", type=click.Path(path_type=Path), help="Config file (TOML).")
@click.option("--max-intensity", type=float, help="Lower the overall cap, in percent.")
@click.option("--sparing", is_flag=True, help="Sparing mode (first sessions).")
@friendly
def run(
    program: str,
    profile_name: str | None,
    use_sim: bool,
    port: str | None,
    speed: str | None,
    as_json: bool,
    config: Path | None,
    max_intensity: float | None,
    sparing: bool,
) -> None:
    """Run a massage program on a cushion (on the simulator unless --port is given)."""
    from controller.clock import loop_factory
    from controller.display import JsonLines, LiveDisplay, PlainLines
    from controller.runner import RunOptions, run_program
    from controller.transports.base import Endpoint, parse_endpoint
    from firmware_profiles import load_profile
    from protocols import load_program

    cfg, limits = _limits(config, max_intensity, sparing)
    factor = _speed(speed)
    if use_sim and port:
        raise UsageError("--sim and --port exclude each other.", hint="Choose one.")
    port = None if use_sim else (port or cfg.defaults.port)
    prog = load_program(program)
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
    options = RunOptions(endpoint, factor)

    async def go(emit: Any) -> int:
        result = await run_program(prog, prof, limits, options, emit=emit)
        if result.exit_code == EXIT_DEVICE:
            err.print(
                f"[bold red]device error:[/] {result.message} All outputs were switched "
                "off where the link allowed.",
                markup=True,
                soft_wrap=True,
            )
        return result.exit_code

    with asyncio.Runner(loop_factory=loop_factory(factor)) as runner:
        if as_json:
            code = runner.run(go(JsonLines()))
        elif err.is_terminal and factor != math.inf:
            with LiveDisplay(err) as live:
                code = runner.run(go(live))
        else:
            code = runner.run(go(PlainLines(err)))
    sys.exit(code)


@main.command()
@click.option(
    "--profile",
    "profile_name",
    default=DEFAULT_SIM_PROFILE,
    show_default=True,
    help="Cushion profile the simulator speaks.",
)
@friendly
def sim(profile_name: str) -> None:
    """Run a simulated cushion on a pseudo-terminal and print its port."""
    from firmware_profiles import load_profile
    from hil.serve import run_standalone

    prof = load_profile(profile_name)

    def announce(port: str) -> None:
        out.print(port)
        err.print(
            f"simulated {prof.name} on {port}; try: cushion run lumbar-classic "
            f"--port {port} --profile {profile_name}   (Ctrl-C ends the simulator)"
        )
        sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_standalone(prof, on_ready=announce))


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


if __name__ == "__main__":
    main()

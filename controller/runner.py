"""Assemble a run: program + profile -> plan -> envelope -> session on a transport."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from controller.device import Device
from controller.events import Emit, Isolated, SessionStarted
from controller.fallback import deadman_warning
from controller.keys import STDIN, Keyboard
from controller.plan import compile_program
from controller.safety import apply_envelope, zone_caps
from controller.session import EXIT_DONE, EXIT_INTERRUPTED, EXIT_SAFETY, Session, SessionResult
from controller.transports.base import Endpoint, open_transport
from controller.words import zone_names

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from controller.limits import SafetyLimits
    from controller.timeline import Timeline
    from controller.transports.base import Transport
    from firmware_profiles import Profile
    from protocols import Program


def plan(program: Program, profile: Profile, limits: SafetyLimits) -> Timeline:
    """Compile a program for a cushion and pass it through the safety envelope."""
    return apply_envelope(
        compile_program(program, profile), profile, limits, sparing=program.sparing
    )


@dataclass(slots=True)
class RunOptions:
    """What `cushion run` was asked to do."""

    endpoint: Endpoint
    speed: float | None = None  # None = real time; inf = as fast as possible (simulator only)
    handle_signals: bool = True
    auto_resume: bool = False  # after a reconnect, resume without waiting for the user
    reconnect: bool | None = None  # None: as the transport prefers
    # Handed the session once its device is open (a node's remote commands reach it here).
    on_session: Callable[[Session], None] | None = None
    # Plan in a worker thread (a node: its other cushions' replies are read meanwhile). Not on
    # the virtual clock, which would run on while the thread works.
    plan_in_thread: bool = False


# Simulated BLE cushions get fixed addresses (random static, F0:CA:...), one per built-in
# profile with a [ble] section in name order, so `cushion scan --sim` and `--ble ADDR` agree.
SIM_BLE_PREFIX = "F0:CA:00:00:00:"


def sim_ble_addresses() -> dict[str, str]:
    """Return the simulated BLE cushions: address -> profile name."""
    from firmware_profiles import builtin_profiles, load_profile

    names = [n for n in sorted(builtin_profiles()) if load_profile(n).ble is not None]
    return {f"{SIM_BLE_PREFIX}{i:02X}": name for i, name in enumerate(names, start=1)}


@contextlib.asynccontextmanager
async def simulated_ble_world(radio: str | None = None) -> AsyncIterator[Any]:
    """Run a virtual BLE radio: in-process with one simulated cushion per BLE-capable
    built-in profile, or joined to a standalone `cushion sim --ble` at `radio`."""
    from firmware_profiles import load_profile
    from hil.ble import SimBleWorld
    from hil.cushion import SimulatedCushion

    # bumble logs link teardown chatter at WARNING; it is noise for a simulated cushion.
    logging.getLogger("bumble").setLevel(logging.ERROR)
    async with SimBleWorld(hci_transport=radio) as world:
        if radio is None:
            for address, name in sim_ble_addresses().items():
                await world.add_cushion(SimulatedCushion(load_profile(name)), address=address)
        yield world


def sim_ble_transport(endpoint: Endpoint, profile: Profile, world: Any) -> Transport:
    """Return a BLE transport that reaches `world` through bleak's backend injection."""
    from controller.transports.ble import BleTransport
    from hil.ble import SimBleakClient, SimBleakScanner

    return BleTransport(
        endpoint,
        profile,
        scanner_backend=SimBleakScanner,
        client_backend=SimBleakClient,
        backend_kwargs={"world": world},
    )


@contextlib.asynccontextmanager
async def _pty_simulator(profile: Profile) -> AsyncIterator[str]:
    """Run a simulated cushion on a real pseudo-terminal in this loop; yield its port."""
    from hil.cushion import SimulatedCushion
    from hil.ptylink import PtyLink

    async with PtyLink(SimulatedCushion(profile)) as link:
        yield link.port


async def run_program(
    program: Program,
    profile: Profile,
    limits: SafetyLimits,
    options: RunOptions,
    *,
    emit: Emit,
    transport: Transport | None = None,
) -> SessionResult:
    """Run one program on one cushion and return how it ended; outputs end off on every path."""
    emit = Isolated(emit)
    if options.plan_in_thread:
        timeline = await asyncio.to_thread(plan, program, profile, limits)
    else:
        timeline = plan(program, profile, limits)
    endpoint = options.endpoint
    stopper = _Stopper()
    try:
        async with contextlib.AsyncExitStack() as stack:
            if options.handle_signals:
                # Installed first, so removed last: a signal during the final all-off (up
                # to 10 s after a reconnect) is handled, never the default "die now".
                stopper.install(stack)
            if transport is None and endpoint.scheme == "sim+pty":
                port = await stack.enter_async_context(_pty_simulator(profile))
                endpoint = Endpoint("serial", port, {})
            if transport is None and endpoint.scheme == "ble" and endpoint.options.get("sim"):
                world = await stack.enter_async_context(simulated_ble_world())
                transport = sim_ble_transport(endpoint, profile, world)
            transport = transport or open_transport(endpoint, profile)
            reconnect = transport.reconnects if options.reconnect is None else options.reconnect
            device = Device(
                transport, profile, limits, emit=emit, sparing=program.sparing, reconnect=reconnect
            )
            session = Session(timeline, device, emit=emit, auto_resume=options.auto_resume)
            # Each zone's cap, and the rule that sets it (the first of the lowest).
            binding = [
                min(rules, key=lambda r: r[0])
                for rules in zone_caps(profile, limits, sparing=program.sparing)
            ]
            caps = tuple(c for c, _ in binding)
            await stack.enter_async_context(device)
            stopper.session = session
            if options.on_session is not None:
                options.on_session(session)
            if stopper.signalled is not None:
                await stopper.stop_now()
            loop = asyncio.get_running_loop()
            stdin = STDIN.get()
            if isinstance(stdin, Keyboard):
                # The live display's keys (space resumes a session paused by a lost link too).
                stack.enter_context(stdin.bind(session))
            elif stdin and options.handle_signals and reconnect and sys.stdin.isatty():
                # Enter resumes a session paused by a lost link (or by the user).
                loop.add_reader(sys.stdin.fileno(), _on_enter, session)
                stack.callback(loop.remove_reader, sys.stdin.fileno())
            warning = deadman_warning(profile)
            emit(
                SessionStarted(
                    0.0,
                    program.name,
                    profile.name,
                    str(options.endpoint),
                    timeline.duration_s,
                    timeline.zones,
                    caps,
                    limits.ramp_per_s,
                    profile.intensity.max,
                    (*timeline.notes, *((warning,) if warning else ())),
                    zone_names(profile),
                    tuple(rule for _, rule in binding),
                    _limits_in_force(limits, sparing=bool(program.sparing or limits.sparing)),
                )
            )
            result = await session.run()
            stopper.over = True  # outputs are off; the device's close is already under way
    except asyncio.CancelledError:
        if stopper.signalled is None:
            raise
        # A signal before the session began: the device (if it was open) closed with its
        # all-off on the way out; report it as interrupted.
        return SessionResult("interrupted", EXIT_INTERRUPTED, f"interrupted ({stopper.signalled})")
    # The device has closed: its last all-off report is the truth about the outputs.
    off = device.last_all_off
    if off is not None and off.still_on and result.exit_code == EXIT_DONE:
        return SessionResult("safety", EXIT_SAFETY, f"the cushion did not turn off: "
                             f"{off.still_on}", all_off=off)
    return replace(result, all_off=off)


def _limits_in_force(limits: SafetyLimits, *, sparing: bool) -> dict[str, float]:
    """Return the limits a person is told about at the start (fractions and seconds)."""
    shown = {
        "max_intensity": limits.max_intensity,
        "intro_max_intensity": limits.intro_max_intensity,
        "intro_min_s": limits.intro_min_s,
        "kidney_max_intensity": limits.kidney_max_intensity,
        "ramp_per_s": limits.ramp_per_s,
        "final_ramp_down_s": limits.final_ramp_down_s,
    }
    if sparing:
        shown["sparing_max_intensity"] = limits.sparing_max_intensity
    return shown


# Closing the terminal sends SIGHUP; Ctrl-\ sends SIGQUIT: all of them cut the outputs first.
# Ctrl-C (SIGINT) is the one a person presses: the first stops gently (the 3 s ramp-down),
# a second one cuts at once.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class _Stopper:
    """Signal handling for one run: once the session runs, SIGINT stops gently and a second
    SIGINT (or any other stop signal) cuts at once; while it starts, any of them cancels."""

    def __init__(self) -> None:
        self.session: Session | None = None
        self.signalled: str | None = None
        self._gentle = False  # a first SIGINT asked for the gentle stop
        self.over = False  # the session has ended: a late signal has nothing left to stop
        self._task = asyncio.current_task()
        self._tasks: set[asyncio.Task[None]] = set()

    def install(self, stack: contextlib.AsyncExitStack) -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue  # ignored on purpose (nohup, a background job): respect that
            loop.add_signal_handler(sig, self._on_signal, sig)
            stack.callback(loop.remove_signal_handler, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        first = self.signalled is None
        self.signalled = self.signalled or sig.name
        if self.over:
            return  # a second halt now would only report an all-off it cannot write
        if self.session is not None:
            if sig == signal.SIGINT and not self._gentle and first:
                self._gentle = True
                self.session.stop("interrupted (Ctrl-C)", exit_code=EXIT_INTERRUPTED)
                return
            why = "Ctrl-C twice" if sig == signal.SIGINT and self._gentle else sig.name
            # Stop beats everything: cut the outputs at once instead of ramping.
            task = asyncio.get_running_loop().create_task(self.stop_now(why))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif first and self._task is not None:
            self._task.cancel()  # still starting: unwind; an opened device closes all-off

    async def stop_now(self, why: str | None = None) -> None:
        """Cut the outputs at once and end the session as interrupted."""
        assert self.session is not None
        await self.session.emergency_stop(
            f"interrupted ({why or self.signalled})", exit_code=EXIT_INTERRUPTED
        )


def _on_enter(session: Session) -> None:
    sys.stdin.readline()
    session.resume()

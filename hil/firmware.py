"""The firmware model: obeys semantic commands the way a cushion's microcontroller would.

No bytes here (the cushion wires the codec around it). Time is the running loop's clock
only; every time-out is a ``loop.call_at`` timer, re-armed lazily so that a frame costs
no timer churn.

Documented choices where real firmwares differ:
- Out-of-range values (level, zone, frequency, heat, mode, lease) are refused with a nak
  (when the profile has one) and change nothing; ``out_of_range="clamp"`` clamps instead.
- A frame that changes an output faster than ``max_update_hz`` for the same target (zone n,
  all zones, frequency, heat, mode, button) is refused the same way (nak 4). The rate is
  judged as a peak-rate policer does over a jittery line (GCRA, the "virtual scheduling"
  of ITU-T I.371): each accepted frame books the next slot ``1/max_update_hz`` (less 10 %)
  after its own or its booked time, whichever is later, and a frame may arrive early by the
  arrival-jitter allowance only. A sender pacing at the rate passes however its frames are
  bunched by the line; one that keeps sending faster is refused within a few frames, however
  large the allowance (on a sped-up clock it is ``speed`` times the real one). Stop,
  keepalive and query are never rate limited.
- "Powered" means some output (a zone or the heater) is on. Auto-off counts from the moment
  the cushion became powered; afterwards a new command may power it again.
- Stepping: ``intensity_up`` from 0 and ``power`` from off start at level 1; ``power`` when
  on turns everything off; ``heat_toggle`` cycles 0, 1, .., heat levels, 0.
- Every valid frame feeds the watchdog, including refused ones; bad frames do not.
- A nak carries ``code``: 1 bad frame, 2 value out of range, 3 unsupported, 4 too fast.
- ``reboot`` forgets everything, as a power cycle does: outputs off, default mode, timers and
  rate-limit memory gone; the next status reply shows that fresh state. (The profile format
  has no boot banner, so a controller can tell a reset only from status and acks.)
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

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
from hil.physics import Heater, Motor

if TYPE_CHECKING:
    from collections.abc import Callable

    from firmware_profiles.commands import Command
    from hil.recorder import Recorder
    from hil.spec import FirmwareSpec

OutOfRange = Literal["reject", "clamp"]

# Timers may fire up to the loop's clock resolution early; compare deadlines with slack.
_EPS = 1e-6
# A controller pacing at exactly max_update_hz on a real clock jitters by ~1 ms (HIL-NOTES);
# accept frames up to 10 % early so only real over-speed is refused.
_RATE_SLACK = 0.9
# How early (real s) a frame may arrive against its booked slot: line and scheduling jitter.
# On a sped-up loop (``loop.speed``) the same real jitter is ``speed`` times longer on the
# loop clock, so is the allowance; the booking keeps the long-run rate honest all the same.
_ARRIVAL_JITTER_S = 0.002
# On a sped-up loop the simulator shares the controller's host and event loop: arrivals
# jitter by that host's scheduling and the pty's delivery, up to ~12 ms under load
# (bench/first_run.py, docs/benchmarks.md). At speed 1 the 10 % rate slack covers such
# jitter (5 ms at 20 Hz); at 26x it is 0.2 ms of real time, so the real allowance is larger.
_SCALED_ARRIVAL_JITTER_S = 0.012


NAK_BAD_FRAME = 1
NAK_OUT_OF_RANGE = 2
NAK_UNSUPPORTED = 3
NAK_TOO_FAST = 4


ACK = Reply("ack")  # shared: fieldless and immutable, sent for nearly every frame
BOOT = Reply("boot")  # the start-up frame, where the profile has one


class _Refused(Exception):
    """Internal: the current command is refused (nak ``code``) for a reason."""

    def __init__(self, reason: str, code: int = NAK_OUT_OF_RANGE) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True, slots=True)
class CushionState:
    """A snapshot of the simulated device at loop time ``t`` (s)."""

    t: float
    commanded: tuple[int, ...]  # per zone, device levels (min_level is off)
    actual: tuple[float, ...]  # per zone motor output after spin-up lag, levels
    level: int  # stepping: the global level; absolute: the highest zone level
    frequency_raw: int | None
    heat: int
    mode: int | None
    powered: bool
    surface_temp_c: float


class Firmware:
    """State machine of one cushion's firmware; `handle` one command, get the reply to send."""

    def __init__(
        self,
        spec: FirmwareSpec,
        recorder: Recorder,
        *,
        spin_up_s: float = 0.3,
        out_of_range: OutOfRange = "reject",
    ) -> None:
        self.spec = spec
        self.recorder = recorder
        self.out_of_range = out_of_range
        # Fault switches, mirrored from `hil.faults.Faults` by the cushion:
        self.ignore_commands = False  # ack as usual, change nothing
        self.nak_all: int | None = None  # refuse every command with a nak of this code
        self.nak_spare_stop = True  # ... except the stop frame
        self.temp_override_c: float | None = None  # report this surface temperature (C)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rate = math.inf if spin_up_s <= 0 else spec.max_level / spin_up_s
        self._min_interval = 1.0 / spec.max_update_hz if spec.max_update_hz else 0.0
        self._slot_s = self._min_interval * _RATE_SLACK
        self._slack: float | None = None  # arrival allowance, once the loop is known
        self._watchdog_s = spec.watchdog_s
        self._acks = spec.acks
        self._zone_keys = tuple(f"zone{z}" for z in range(spec.zone_count))
        self._init_state()

    def _init_state(self) -> None:
        n = self.spec.zone_count
        off = self.spec.min_level
        self._levels = [off] * n
        self._motors = [Motor(self._rate, start=off, target=off) for _ in range(n)]
        self._heater = Heater(self.spec.heat_levels)
        self._heat = 0
        self._frequency: int | None = self.spec.frequency_default
        self._mode: int | None = self.spec.modes[0] if self.spec.modes else None
        self._step_level = self.spec.min_level
        self._powered = False
        self._last_accept: dict[str, float] = {}
        self._booked: dict[str, float] = {}  # per target: the earliest slot for the next frame
        self._lease: list[float | None] = [None] * n
        self._lease_timer: asyncio.TimerHandle | None = None
        self._watchdog_deadline = 0.0
        self._watchdog_timer: asyncio.TimerHandle | None = None
        self._auto_off_timer: asyncio.TimerHandle | None = None

    # -- time ---------------------------------------------------------------------------

    def loop(self) -> asyncio.AbstractEventLoop:
        """Return the loop this firmware runs on (bound on first use)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now(self) -> float:
        """Return the loop time (s); 0.0 before the firmware has met a loop."""
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                return 0.0
        return self._loop.time()

    # -- commands -----------------------------------------------------------------------

    def handle(self, cmd: Command) -> Reply | None:
        """Obey one decoded command; return the reply to transmit, if any."""
        loop = self._loop
        now = loop.time() if loop is not None else self.now()
        self.recorder.add_command(now, cmd)
        if self._watchdog_s is not None:
            self._feed_watchdog(now)
        if self.nak_all is not None and not (self.nak_spare_stop and isinstance(cmd, Stop)):
            self.recorder.add(now, "refused", (cmd, "nak fault: every command is refused"))
            return Reply("nak", {"code": self.nak_all}) if self.spec.naks else None
        if type(cmd) is SetAll or type(cmd) is SetZone:
            return self._handle_levels(cmd, now)
        if isinstance(cmd, Query):
            return Reply("status", self.status_fields(now))
        if isinstance(cmd, Keepalive):
            return self._ack()
        if isinstance(cmd, Stop):
            if not self.ignore_commands:
                self._all_off(now)
            return self._ack()
        key = _target(cmd)
        try:
            self._check_rate(key, now)
            action = self._validate(cmd)
        except _Refused as refused:
            self.recorder.add(now, "refused", (cmd, str(refused)))
            return Reply("nak", {"code": refused.code}) if self.spec.naks else None
        self._accept(key, now)
        if not self.ignore_commands:
            action(now)
        return self._ack()

    def _handle_levels(self, cmd: SetAll | SetZone, now: float) -> Reply | None:
        """`handle` for the frames nearly every update is: the same checks, in the same order."""
        if type(cmd) is SetZone:
            zone = cmd.zone
            key = self._zone_keys[zone] if 0 <= zone < len(self._zone_keys) else f"zone{zone}"
        else:
            key = "SetAll"
        try:
            self._check_rate(key, now)
            pairs, lease = self._validate_levels(cmd)
        except _Refused as refused:
            self.recorder.add(now, "refused", (cmd, str(refused)))
            return Reply("nak", {"code": refused.code}) if self.spec.naks else None
        self._accept(key, now)
        if not self.ignore_commands:
            self._set_zones(now, pairs, lease)
        return ACK if self._acks else None

    def bad_frame(self) -> Reply | None:
        """Return the reply a real device sends for an undecodable frame (nak or nothing)."""
        return Reply("nak", {"code": NAK_BAD_FRAME}) if self.spec.naks else None

    def _ack(self) -> Reply | None:
        return ACK if self._acks else None

    def _check_rate(self, key: str, now: float) -> None:
        if not self._min_interval:
            return
        booked = self._booked.get(key)
        if booked is None:
            return
        slack = self._slack
        if slack is None:
            # A real firmware timestamps arrivals with some jitter; on a sped-up loop the
            # wire's real-time jitter is multiplied by the speed, so the allowance is too.
            speed = float(getattr(self.loop(), "speed", 1.0))
            slack = (_SCALED_ARRIVAL_JITTER_S if speed > 1.0 else _ARRIVAL_JITTER_S) * speed
            self._slack = slack  # the loop, so its speed, is bound once for good
        if now < booked - slack:
            gap = now - self._last_accept[key]
            raise _Refused(f"faster than max_update_hz ({gap:.4f} s after the last)", NAK_TOO_FAST)

    def _accept(self, key: str, now: float) -> None:
        """Book the next slot for this command's target (see the module notes: GCRA)."""
        self._last_accept[key] = now
        if self._min_interval:
            booked = self._booked.get(key, now)
            self._booked[key] = (now if now > booked else booked) + self._slot_s

    def _validate(self, cmd: Command) -> Callable[[float], None]:
        """Check ``cmd`` against the firmware's limits; return how to apply it."""
        spec = self.spec
        if isinstance(cmd, Press):
            if spec.control != "stepping":
                raise _Refused("button presses need a stepping profile", NAK_UNSUPPORTED)
            return lambda now: self._press(now, cmd)
        if isinstance(cmd, SetHeat):
            if spec.heat_levels == 0:
                raise _Refused("no heater", NAK_UNSUPPORTED)
            level = self._ranged("heat level", cmd.level, 0, spec.heat_levels)
            return lambda now: self._set_heat(now, level)
        if isinstance(cmd, SetMode):
            if cmd.mode not in spec.modes:
                raise _Refused(f"unknown mode {cmd.mode}")
            return lambda now: self._set_mode(now, cmd.mode)
        if isinstance(cmd, SetFrequency):
            if spec.frequency_range is None:
                raise _Refused("no frequency control", NAK_UNSUPPORTED)
            value = self._ranged("frequency", cmd.value, *spec.frequency_range)
            table = spec.frequency_table
            if table is not None and value not in table:
                if self.out_of_range != "clamp":
                    raise _Refused(f"frequency {value} not one of {table}")
                value = min(table, key=lambda raw: abs(raw - value))
            return lambda now: self._set_frequency(now, value)
        if spec.control != "absolute":
            raise _Refused("absolute levels need an absolute profile", NAK_UNSUPPORTED)
        if isinstance(cmd, SetZone | SetAll):
            pairs, lease = self._validate_levels(cmd)
            return lambda now: self._set_zones(now, pairs, lease)
        raise _Refused(f"unsupported command {cmd!r}", NAK_UNSUPPORTED)

    def _validate_levels(
        self, cmd: SetZone | SetAll
    ) -> tuple[tuple[tuple[int, int], ...], float | None]:
        """Check a level command; return the (zone, level) pairs to set and the lease."""
        spec = self.spec
        if spec.control != "absolute":
            raise _Refused("absolute levels need an absolute profile", NAK_UNSUPPORTED)
        if isinstance(cmd, SetZone):
            if not 0 <= cmd.zone < spec.zone_count:
                raise _Refused(f"no zone {cmd.zone}")
            level = self._ranged("level", cmd.level, spec.min_level, spec.max_level)
            return ((cmd.zone, level),), self._lease_for(cmd.duration_s)
        if len(cmd.levels) != spec.zone_count:
            raise _Refused(f"{len(cmd.levels)} levels for {spec.zone_count} zones")
        lo, hi = spec.min_level, spec.max_level
        levels = cmd.levels
        if min(levels) < lo or max(levels) > hi:
            levels = tuple(self._ranged("level", lv, lo, hi) for lv in levels)
        pairs = tuple(enumerate(levels))
        return pairs, self._lease_for(cmd.duration_s)

    def _ranged(self, what: str, value: int, low: int, high: int) -> int:
        if low <= value <= high:
            return value
        if self.out_of_range == "clamp":
            return min(max(value, low), high)
        raise _Refused(f"{what} {value} outside {low}..{high}")

    def _lease_for(self, duration_s: float | None) -> float | None:
        if duration_s is None:
            return None
        if duration_s <= 0:
            raise _Refused(f"lease {duration_s} s is not positive")
        cap = self.spec.max_lease_s
        if cap is not None and duration_s > cap:
            if self.out_of_range == "clamp":
                return cap
            raise _Refused(f"lease {duration_s} s longer than {cap} s")
        return duration_s

    # -- outputs ------------------------------------------------------------------------

    def _set_zones(
        self, now: float, levels: tuple[tuple[int, int], ...], lease_s: float | None
    ) -> None:
        off = self.spec.min_level
        current = self._levels
        motors = self._motors
        add_level = self.recorder.add_level
        for zone, level in levels:
            if current[zone] != level:  # _set_level, inlined: this runs for every update
                current[zone] = level
                motors[zone].command(now, level)
                add_level(now, zone, level)
        if lease_s is None:
            for zone, _ in levels:
                self._lease[zone] = None
        else:
            until = now + lease_s
            for zone, level in levels:
                self._lease[zone] = until if level != off else None
            timer = self._lease_timer
            if timer is None or timer.when() > until + _EPS:
                self._arm_lease(now)
        self._update_power(now)

    def _set_level(self, now: float, zone: int, level: int) -> None:
        if self._levels[zone] != level:
            self._levels[zone] = level
            self._motors[zone].command(now, level)
            self.recorder.add_level(now, zone, level)

    def _set_heat(self, now: float, level: int) -> None:
        if level != self._heat:
            self._heat = level
            self._heater.set_level(now, level)
            self.recorder.add(now, "heat", level)
            self._update_power(now)

    def _set_mode(self, now: float, mode: int) -> None:
        if mode != self._mode:
            self._mode = mode
            self.recorder.add(now, "mode", mode)

    def _set_frequency(self, now: float, value: int) -> None:
        if value != self._frequency:
            self._frequency = value
            self.recorder.add(now, "frequency", value)

    def _set_step_level(self, now: float, level: int) -> None:
        self._step_level = level
        for zone in range(self.spec.zone_count):
            self._set_level(now, zone, level)
        self._update_power(now)

    def _press(self, now: float, cmd: Press) -> None:
        lo, hi = self.spec.min_level, self.spec.max_level
        if cmd.button == "intensity_up":
            self._set_step_level(now, min(hi, self._step_level + 1))
        elif cmd.button == "intensity_down":
            self._set_step_level(now, max(lo, self._step_level - 1))
        elif cmd.button == "next_mode" and self.spec.modes:
            modes = self.spec.modes
            i = modes.index(self._mode) if self._mode in modes else -1
            self._set_mode(now, modes[(i + 1) % len(modes)])
        elif cmd.button == "heat_toggle" and self.spec.heat_levels:
            self._set_heat(now, (self._heat + 1) % (self.spec.heat_levels + 1))
        elif cmd.button == "power":
            if self._powered:
                self._all_off(now)
            else:
                self._set_step_level(now, lo + 1)

    def _all_off(self, now: float, cause: str | None = None) -> None:
        """Turn every output off at once; ``cause`` names a firmware time-out, if any."""
        if cause is not None:
            self.recorder.add(now, cause)
        off = self.spec.min_level
        self._step_level = off
        for zone in range(self.spec.zone_count):
            self._set_level(now, zone, off)
            self._lease[zone] = None
        self._set_heat(now, 0)
        self._update_power(now)

    def _update_power(self, now: float) -> None:
        # Levels never go below min_level (validated), so max() tells whether any is on.
        powered = max(self._levels) != self.spec.min_level or self._heat > 0
        if powered == self._powered:
            return
        self._powered = powered
        self.recorder.add(now, "power", powered)
        if self._auto_off_timer is not None:
            self._auto_off_timer.cancel()
            self._auto_off_timer = None
        if powered and self.spec.auto_off_s is not None:
            self._auto_off_timer = self.loop().call_at(now + self.spec.auto_off_s, self._auto_off)

    # -- time-outs ----------------------------------------------------------------------

    def _auto_off(self) -> None:
        self._auto_off_timer = None
        if self._powered:
            self._all_off(self.now(), "auto_off")

    def _feed_watchdog(self, now: float) -> None:
        if self.spec.watchdog_s is None:
            return
        self._watchdog_deadline = now + self.spec.watchdog_s
        if self._watchdog_timer is None:
            self._watchdog_timer = self.loop().call_at(self._watchdog_deadline, self._watchdog)

    def _watchdog(self) -> None:
        now = self.now()
        if now < self._watchdog_deadline - _EPS:
            self._watchdog_timer = self.loop().call_at(self._watchdog_deadline, self._watchdog)
            return
        self._watchdog_timer = None
        if self._powered:
            self._all_off(now, "watchdog")

    def _arm_lease(self, now: float) -> None:
        pending = [d for d in self._lease if d is not None]
        if not pending:
            return
        first = min(pending)
        timer = self._lease_timer
        if timer is not None and timer.when() <= first + _EPS:
            return  # fires no later than needed; it re-arms itself for the rest
        if timer is not None:
            timer.cancel()
        self._lease_timer = self.loop().call_at(first, self._lease_due)

    def _lease_due(self) -> None:
        now = self.now()
        self._lease_timer = None
        for zone, deadline in enumerate(self._lease):
            if deadline is not None and deadline <= now + _EPS:
                self._lease[zone] = None
                if self._levels[zone] != self.spec.min_level:
                    self.recorder.add(now, "lease_expired", zone)
                    self._set_level(now, zone, self.spec.min_level)
        self._update_power(now)
        self._arm_lease(now)

    # -- reset and inspection -----------------------------------------------------------

    def reboot(self) -> None:
        """Power-cycle: cancel every timer and forget all state (outputs off, default mode)."""
        now = self.now()
        for timer in (self._lease_timer, self._watchdog_timer, self._auto_off_timer):
            if timer is not None:
                timer.cancel()
        for zone in range(self.spec.zone_count):
            self._set_level(now, zone, self.spec.min_level)
        self._set_heat(now, 0)
        self._update_power(now)
        self.recorder.add(now, "reboot")
        self._init_state()

    def state(self, t: float | None = None) -> CushionState:
        """Return a snapshot of outputs at loop time ``t`` (s; default now)."""
        now = self.now() if t is None else t
        levels = tuple(self._levels)
        return CushionState(
            t=now,
            commanded=levels,
            actual=tuple(m.output(now) for m in self._motors),
            level=self._step_level if self.spec.control == "stepping" else max(levels),
            frequency_raw=self._frequency,
            heat=self._heat,
            mode=self._mode,
            powered=self._powered,
            surface_temp_c=(
                self._heater.temperature_c(now)
                if self.temp_override_c is None
                else self.temp_override_c
            ),
        )

    def status_fields(self, now: float) -> dict[str, int]:
        """Return the integer fields of a status reply (filtered to the profile's fields)."""
        state = self.state(now)
        fields: dict[str, int] = {
            "level": state.level,
            "heat": state.heat,
            "power": int(state.powered),
            "temp_c": round(state.surface_temp_c),
        }
        if state.mode is not None:
            fields["mode"] = state.mode
        if state.frequency_raw is not None:
            fields["frequency"] = state.frequency_raw
        for zone, level in enumerate(state.commanded):
            fields[f"level{zone}"] = level  # per-zone status fields, codec naming
        wanted = self.spec.status_fields
        if wanted is None:
            return fields
        return {name: fields.get(name, 0) for name in wanted}


def _target(cmd: Command) -> str:
    """Return the rate-limit bucket of a command (one per output it changes)."""
    if isinstance(cmd, SetZone):
        return f"zone{cmd.zone}"
    return type(cmd).__name__

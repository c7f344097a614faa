"""The device facade: the only path to the wire, applying the run-time safety layer.

Every byte to a cushion leaves through `Device._send`. Setpoints are clamped to the zone
caps and to a ceiling that climbs only at the ramp rate and drops to zero on every open
and resume; updates are coalesced (latest value wins); a halt pre-empts everything.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from controller.clock import sleep_until
from controller.errors import DeviceError, DeviceRejected, DeviceTimeout, LinkLost
from controller.events import AllOff, ClampApplied, Emit, Fault, LinkDown, LinkUp, SetpointSent
from controller.safety import zone_caps
from controller.timeline import Setpoint
from firmware_profiles import Codec
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
    SetMode,
    SetZone,
    Stop,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from controller.limits import SafetyLimits
    from controller.transports.base import Transport
    from firmware_profiles import Profile

_EPS = 1e-6
# Longest gap the run-time ceiling may bridge in one update: one ramp-rule step (10 % per 5 s).
# Long enough that a plan's slow ramp, which reaches the wire only when a device level
# changes, is not held back; short enough that a value jumping after a quiet spell still
# climbs from the ceiling instead of leaping by the whole quiet time's allowance.
_MAX_RAMP_GAP_S = 5.0
_BAD_FRAMES_BEFORE_FAULT = 3
_PRESS_RETRIES = 2
_STOP_DELIVERY_S = 10.0
_BACKOFF_MIN_S = 0.2
_BACKOFF_MAX_S = 10.0
_REAL_REPLY_FLOOR_S = 0.1
_NAKS_BEFORE_FAULT = 3
# Stay this far under the device's update rate: USB adapters and radios bunch frames up.
_RATE_MARGIN = 1.1
_REAL_JITTER_S = 0.002


@dataclass(frozen=True, slots=True)
class Target:
    """Outputs in device units: what the wire carries."""

    levels: tuple[int, ...]
    frequency: int | None = None
    heat: int | None = None
    mode: int | None = None


class Device:
    """Facade over one cushion: clamp, quantise, coalesce, keep alive, and stop first."""

    def __init__(
        self,
        transport: Transport,
        profile: Profile,
        limits: SafetyLimits,
        *,
        emit: Emit,
        sparing: bool = False,
        reconnect: bool = False,
        on_link: Callable[[bool], None] | None = None,
    ) -> None:
        self.transport = transport
        self.reconnect = reconnect
        self.on_link = on_link
        self.profile = profile
        self.codec = Codec(profile)
        self.limits = limits
        self.emit = emit
        self.origin = 0.0
        self._caps = [
            min(c for c, _ in rules) for rules in zone_caps(profile, limits, sparing=sparing)
        ]
        self._n = len(profile.zones)
        self._min_interval = 1.0 / profile.limits.max_update_hz
        self._mode_numbers = dict(profile.modes)
        self._mode_names = {v: k for k, v in profile.modes.items()}
        self._desired = Setpoint((0.0,) * self._n)
        self._dirty = asyncio.Event()
        self._halted = True  # nothing goes out until `open` sent the all-off and `resume` ran
        self._final = False
        self._sent: Target | None = None
        self._ceiling = 0.0
        self._ceiling_t = 0.0
        self._binding: set[int] = set()
        self._last_frame_t = float("-inf")
        self._last_update_t = float("-inf")
        self._last_press_t = float("-inf")
        self._lease_t = [float("-inf")] * self._n  # when each zone's lease was last sent
        self._pending_acks: deque[float] = deque()
        self._bad_frames = 0
        self._naks = 0
        self._status: dict[str, int] | None = None
        self._status_event = asyncio.Event()
        self._acks = bool(profile.limits.ack_every_command)
        self._opened = False
        self._reply_timeout = profile.limits.reply_timeout_s
        self._link_up = asyncio.Event()
        self._writing = False
        self._fresh = False
        self._writer_due: float | None = None
        self._stepping = profile.control == "stepping"

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the link and put the cushion in a known state: everything off."""
        await self.transport.open()
        self._opened = True
        self._link_up.set()
        loop = asyncio.get_running_loop()
        # A sped-up simulator clock shrinks real reply time too; keep a floor in real time.
        speed = float(getattr(loop, "speed", 1.0))
        self._reply_timeout = max(self.profile.limits.reply_timeout_s, _REAL_REPLY_FLOOR_S * speed)
        self._min_interval = (
            _RATE_MARGIN / self.profile.limits.max_update_hz + _REAL_JITTER_S * speed
        )
        self._ceiling, self._ceiling_t = 0.0, loop.time()
        await self._send(Stop())
        self._sent = Target((0,) * self._n)

    async def close(self, reason: str = "session over") -> None:
        """Send all-off (best effort, bounded in time) and close the link; never raises."""
        self._halted = self._final = True
        if self._opened:
            sent = False
            try:
                if not self._link_up.is_set() and self.reconnect:
                    # A stop asked for while the link was down is delivered on reconnect.
                    await asyncio.wait_for(self._restore(), _STOP_DELIVERY_S)
                else:
                    sent = await asyncio.wait_for(self._send(Stop()), max(0.5, self._reply_timeout))
            except (DeviceError, OSError, TimeoutError):
                pass
            self.emit(AllOff(self._t(), sent or self._link_up.is_set(), reason))
        self._opened = False
        await self.transport.close()

    async def __aenter__(self) -> Device:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- commands from the session ---------------------------------------------------------

    def set(self, setpoint: Setpoint) -> None:
        """Ask for new outputs (0..1 per zone); the newest request replaces any unsent one."""
        self._desired = setpoint
        self._poke()

    def _poke(self) -> None:
        """Wake the writer for new work (a timer wake-up alone only re-checks leases)."""
        self._fresh = True
        self._dirty.set()

    async def offer(self, setpoint: Setpoint) -> None:
        """Like `set`, but write at once from the caller's task when the device may take it."""
        self._desired = setpoint
        loop = asyncio.get_running_loop()
        now = loop.time()
        if (
            self._writing
            or self._halted
            or self._stepping
            or now < self._last_update_t + self._min_interval
        ):
            self._poke()  # the writer task sends it (or a newer one) when allowed
            return
        # Same path as the writer, minus a task switch per update: the clamp, the codec and
        # `_send` are shared, so this is still the one way to the wire.
        self._writing = True
        try:
            await self._update(now, self.profile.limits.lease_s)
        finally:
            self._writing = False
        lease = self.profile.limits.lease_s
        due = self._writer_due
        if self._binding or (lease and (due is None or self._lease_due(lease) < due)):
            self._dirty.set()  # the writer must (re)arm its ceiling or lease timer

    async def halt(self, reason: str, *, final: bool = True) -> None:
        """Turn every output off now, ahead of anything queued; `final` forbids a resume."""
        self._halted = True
        self._final = self._final or final
        self._desired = Setpoint((0.0,) * self._n)
        sent = await self._send(Stop())
        self._sent = Target((0,) * self._n, None, None, self._sent.mode if self._sent else None)
        self.emit(AllOff(self._t(), sent, reason))

    def resume(self) -> None:
        """Let outputs flow again, ramping from zero (after open, pause or reconnect)."""
        if self._final:
            return
        self._ceiling, self._ceiling_t = 0.0, asyncio.get_running_loop().time()
        self._halted = False
        self._poke()

    @property
    def ceiling(self) -> float:
        """Return the run-time ceiling (0..1) outputs currently play under."""
        return self._ceiling

    # -- background work -------------------------------------------------------------------

    async def serve(self) -> None:
        """Run the writer, reader and keepalive loops until cancelled; raises on a device fault."""
        # Replies owed since `open` could not be read before now: time them from here, so a
        # busy start (planning, scanning) is not taken for a silent device.
        now = asyncio.get_running_loop().time()
        self._pending_acks = deque(now for _ in self._pending_acks)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._writer_loop(), name="cushion-writer")
            tg.create_task(self._reader_loop(), name="cushion-reader")
            tg.create_task(self._keepalive_loop(), name="cushion-keepalive")

    async def _writer_loop(self) -> None:
        loop = asyncio.get_running_loop()
        lease = self.profile.limits.lease_s
        wake: asyncio.TimerHandle | None = None
        while True:
            due: float | None = None
            if not self._halted:
                if self._binding:
                    due = loop.time() + self._min_interval  # keep climbing under the ceiling
                if lease and self._sent is not None and any(self._sent.levels):
                    renew = self._lease_due(lease)
                    due = renew if due is None else min(due, renew)
            if due is not None:
                # A timer, not wait_for: this loop runs for every update and must stay cheap.
                wake = loop.call_at(due, self._dirty.set)
            self._writer_due = due
            await self._dirty.wait()
            if wake is not None:
                wake.cancel()
                wake = None
            self._dirty.clear()
            earliest = self._last_update_t + self._min_interval
            if loop.time() < earliest:
                await sleep_until(earliest)  # meanwhile newer setpoints replace this one
            if self._halted or self._writing:
                continue  # an inline update (offer) is on the wire; it takes the newest value
            fresh, self._fresh = self._fresh, False
            if not (fresh or self._binding or self._lease_is_due(lease, loop.time())):
                continue  # a lease timer that an inline update has already made moot
            self._writing = True
            try:
                await self._update(loop.time(), lease)
            finally:
                self._writing = False

    async def _update(self, now: float, lease: float | None) -> None:
        """Put the newest setpoint on the wire (clamped), or renew leases if nothing changed."""
        target = self._clamp(self._desired, now)
        if target != self._sent:
            self._last_update_t = now
            if self.profile.control == "stepping":
                await self._apply_stepping(target)
            else:
                await self._apply_absolute(target)
        elif lease and any(target.levels) and now + _EPS >= self._lease_due(lease):
            # _EPS: a timer due "now" may fire a float rounding early; renew rather than spin.
            self._last_update_t = now
            await self._renew_lease()

    async def _reader_loop(self) -> None:
        parser = self.codec.reply_parser()
        while True:
            try:
                data = await self.transport.read()
            except LinkLost as exc:
                if not self.reconnect:
                    raise
                self._link_lost(str(exc))
                await self._restore()
                parser = self.codec.reply_parser()
                continue
            for item in parser.feed(data):
                self._on_reply(item)

    def _link_lost(self, why: str) -> None:
        """Treat every output as off and tell the session; the device's watchdog does the rest."""
        if not self._link_up.is_set():
            return
        self._link_up.clear()
        self._halted = True
        self._pending_acks.clear()
        self._status = None
        self.emit(LinkDown(self._t(), why))
        if self.on_link is not None:
            self.on_link(False)

    async def _restore(self) -> None:
        """Reconnect with backoff and jitter; the first frame on the new link is all-off."""
        attempt = 0
        while not self._link_up.is_set():
            await self.transport.close()
            try:
                await self.transport.open()
            except DeviceError as exc:
                attempt += 1
                # Jittered exponential backoff, as bleak-retry-connector and led-ble do:
                # many cushions coming back at once must not storm the adapter.
                delay = _BACKOFF_MIN_S + random.uniform(0, min(_BACKOFF_MAX_S, 1.5**attempt))
                self.emit(Fault(self._t(), f"reconnect attempt {attempt} failed: {exc}"))
                await asyncio.sleep(delay)
                continue
            self._link_up.set()
        await self._send(Stop())
        self._sent = Target((0,) * self._n)
        self._ceiling, self._ceiling_t = 0.0, asyncio.get_running_loop().time()
        self.emit(LinkUp(self._t()))
        if self.on_link is not None and not self._final:
            self.on_link(True)

    async def _keepalive_loop(self) -> None:
        loop = asyncio.get_running_loop()
        limits = self.profile.limits
        while True:
            if not self._link_up.is_set():
                await self._link_up.wait()
            now = loop.time()
            deadlines = [now + 1.0]
            if self._pending_acks:
                due = self._pending_acks[0] + self._reply_timeout
                if now >= due:
                    raise DeviceTimeout(
                        f"the cushion did not answer within {self._reply_timeout:g} s.",
                        hint="Check that the profile matches the device and the link is good.",
                    )
                deadlines.append(due)
            if limits.keepalive_s and not self._final:
                due = self._last_frame_t + limits.keepalive_s
                if now >= due:
                    await self._send(Keepalive() if self.profile.supports("keepalive") else Query())
                    due = now + limits.keepalive_s
                deadlines.append(due)
            await sleep_until(min(deadlines))

    # -- the run-time envelope ---------------------------------------------------------------

    def quantize_levels(self, levels: np.ndarray) -> np.ndarray:
        """Return the device levels (samples x zones) for intensities under the zone caps."""
        scale = self.profile.intensity
        x = np.minimum(levels, np.asarray(self._caps))
        # Same rounding as the profile's to_device: down, with its tiny tolerance.
        q = scale.min + np.floor(np.clip(x, 0.0, 1.0) * (scale.max - scale.min) + 1e-9)
        return np.where(x <= 0.0, scale.min, q).astype(np.int64)

    def _clamp(self, sp: Setpoint, now: float) -> Target:
        dt = min(max(0.0, now - self._ceiling_t), _MAX_RAMP_GAP_S)
        allowed = self._ceiling + self.limits.ramp_per_s * dt + _EPS
        out = [w if w < c else c for w, c in zip(sp.levels, self._caps, strict=True)]
        top = max(out, default=0.0)
        if top > allowed:
            binding: set[int] = set()
            for z, value in enumerate(out):
                if value > allowed:
                    binding.add(z)
                    if z not in self._binding:
                        self.emit(
                            ClampApplied(
                                self._t(),
                                self.profile.zones[z].id,
                                "ramp rule",
                                sp.levels[z],
                                allowed,
                                layer="device",
                            )
                        )
                    out[z] = allowed
            self._binding = binding
            top = allowed
        elif self._binding:
            self._binding = set()
        # Every output is <= allowed, so the ceiling never climbs faster than the ramp rate;
        # the allowance counts from the last rise, so evaluating more often loses nothing.
        if top > self._ceiling:
            self._ceiling, self._ceiling_t = top, now
        return self._target(sp, out)

    def _target(self, sp: Setpoint, levels: list[float]) -> Target:
        scale = self.profile.intensity
        lo, span = scale.min, scale.max - scale.min
        # The profile's to_device, inlined for the hot path: round down, 0 is off.
        quantised = tuple(
            lo if v <= 0.0 else scale.max if v >= 1.0 else lo + math.floor(v * span + 1e-9)
            for v in levels
        )
        freq = None
        if sp.frequency_hz is not None and self.profile.frequency is not None:
            freq = self.profile.frequency.to_device(sp.frequency_hz)
        heat = None
        if sp.heat is not None and self.profile.heat is not None:
            heat = int(min(sp.heat, self.limits.heat_max) * self.profile.heat.levels + _EPS)
        mode = self._mode_numbers.get(sp.mode) if sp.mode is not None else None
        return Target(quantised, freq, heat, mode)

    # -- turning targets into commands ---------------------------------------------------------

    async def _apply_absolute(self, target: Target) -> None:
        # After a refusal nothing is known: -1 differs from every level, so all are resent.
        old = self._sent or Target((-1,) * self._n)
        lease = self.profile.limits.lease_s
        if (
            target.mode is not None
            and target.mode != old.mode
            and self.profile.supports("set_mode")
        ):
            await self._send(SetMode(target.mode))
        if (
            target.frequency is not None
            and target.frequency != old.frequency
            and self.profile.supports("set_frequency")
        ):
            await self._send(SetFrequency(target.frequency))
        heat_old = old.heat or 0
        if (target.heat or 0) != heat_old and self.profile.supports("set_heat"):
            await self._send(SetHeat(target.heat or 0))
        if target.levels != old.levels:
            changed = [z for z in range(self._n) if target.levels[z] != old.levels[z]]
            now = asyncio.get_running_loop().time()
            if self.profile.supports("set_all") and (
                len(changed) > 1 or not self.profile.supports("set_zone")
            ):
                await self._send(SetAll(target.levels, lease))
                changed = list(range(self._n))
            else:
                for z in changed:
                    await self._send(SetZone(z, target.levels[z], lease))
            for z in changed:
                self._lease_t[z] = now
        if self._halted:
            return  # a halt overtook this update while it was being written
        self._sent = target
        self._emit_sent(target)

    def _lease_is_due(self, lease: float | None, now: float) -> bool:
        """Tell whether a running zone's lease needs renewing now."""
        return bool(lease) and now + _EPS >= self._lease_due(lease or 0.0)

    def _lease_due(self, lease: float) -> float:
        """Return when the oldest lease of a running zone is half used up."""
        levels = self._sent.levels if self._sent else ()
        return (
            min(
                (t for t, level in zip(self._lease_t, levels, strict=True) if level),
                default=float("inf"),
            )
            + lease / 2
        )

    async def _renew_lease(self) -> None:
        """Renew every running zone's lease that is half used up, before the device lets go."""
        target = self._sent
        lease = self.profile.limits.lease_s
        if target is None or not lease:
            return
        now = asyncio.get_running_loop().time()
        due = [
            z
            for z, level in enumerate(target.levels)
            if level and now + _EPS >= self._lease_t[z] + lease / 2
        ]
        if self.profile.supports("set_all") and (
            len(due) > 1 or not self.profile.supports("set_zone")
        ):
            await self._send(SetAll(target.levels, lease))
            due = list(range(self._n))
        else:
            for z in due:
                await self._send(SetZone(z, target.levels[z], lease))
        for z in due:
            self._lease_t[z] = now

    async def _apply_stepping(self, target: Target) -> None:
        """Walk a button-style cushion to the target one confirmed press at a time."""
        want_level = max(target.levels, default=0)
        if self._status is None and self.profile.supports("query"):
            await self._query()
        known_level = self._known("level", max(self._sent.levels) if self._sent else 0)
        if target.mode is not None and self.profile.supports("press.next_mode"):
            for _ in range(len(self._mode_numbers) + 1):
                if self._known("mode", -1) == target.mode or self._halted:
                    break
                await self._press("next_mode", "mode")
        while not self._halted:
            known_level = self._known("level", known_level)
            desired_now = self._clamp(self._desired, asyncio.get_running_loop().time())
            want_level = max(desired_now.levels, default=0)
            if known_level == want_level:
                break
            button = "intensity_up" if want_level > known_level else "intensity_down"
            await self._press(button, "level")
            if not self.profile.supports("query"):
                known_level += 1 if button == "intensity_up" else -1
                self._status = {**(self._status or {}), "level": known_level}
        if self._halted:
            return
        level = self._known("level", want_level)
        mode = self._known("mode", target.mode if target.mode is not None else -1)
        final = Target(
            (level,) * self._n, target.frequency, target.heat, mode if mode >= 0 else None
        )
        self._sent = final
        self._emit_sent(final)

    def _known(self, name: str, default: int) -> int:
        return (self._status or {}).get(name, default)

    async def _press(self, button: str, field: str) -> None:
        """Press once; with status replies, confirm it took before any further press."""
        before = self._known(field, -1)
        loop = asyncio.get_running_loop()
        for _attempt in range(_PRESS_RETRIES + 1):
            # Presses are rate-limited like updates: a remote-style device drops fast repeats.
            await sleep_until(self._last_press_t + self._min_interval)
            if self._halted:
                return
            self._last_press_t = loop.time()
            await self._send(Press(button))  # type: ignore[arg-type]
            if not self.profile.supports("query"):
                return
            await self._query()
            if self._known(field, -1) != before:
                return
            # The status proves the press was lost, so pressing again is not a blind repeat.
        raise DeviceRejected(
            f"the cushion ignored the '{button}' button {_PRESS_RETRIES + 1} times.",
            hint="Check that the profile's button frames match this remote.",
        )

    async def _query(self) -> None:
        self._status_event.clear()
        await self._send(Query())
        try:
            await asyncio.wait_for(self._status_event.wait(), self._reply_timeout)
        except TimeoutError as exc:
            raise DeviceTimeout(
                f"the cushion sent no status within {self._reply_timeout:g} s.",
                hint="Check the link and that the profile's status reply matches the device.",
            ) from exc

    # -- the wire ----------------------------------------------------------------------------

    async def _send(self, command: Command) -> bool:
        """Encode and write one command: the single place bytes leave for the cushion."""
        if self._halted and not isinstance(command, Stop | Keepalive | Query):
            return False  # a halt always wins over updates that were already on their way
        if not self._link_up.is_set():
            return False  # nothing to write to; all-off goes first once the link is back
        frame = self.codec.encode(command)
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._acks and not isinstance(command, Query):
            self._pending_acks.append(now)
        self._last_frame_t = now
        try:
            await self.transport.write(frame)
        except LinkLost as exc:
            if not self.reconnect:
                raise
            self._link_lost(str(exc))  # the reader loop reconnects
            return False
        return True

    def _on_reply(self, item: Reply | BadFrame) -> None:
        if isinstance(item, BadFrame):
            self._bad_frames += 1
            self.emit(Fault(self._t(), f"unreadable reply from the cushion ({item.reason})"))
            if self._bad_frames >= _BAD_FRAMES_BEFORE_FAULT:
                raise DeviceRejected(
                    "the cushion answers with garbage.",
                    hint="Check the baud rate and that the profile matches the device.",
                )
            return
        self._bad_frames = 0
        if item.kind in ("ack", "nak") and self._pending_acks:
            self._pending_acks.popleft()
        if item.kind == "nak":
            # A refused command left the device as it was: resend the whole state next time.
            # Refusals in a row mean the profile does not match the device.
            self._naks += 1
            code = item.fields.get("code")
            self.emit(Fault(self._t(), f"the cushion refused a command (nak code {code})"))
            if self._naks >= _NAKS_BEFORE_FAULT:
                raise DeviceRejected(
                    f"the cushion refused {self._naks} commands in a row (last nak code {code}).",
                    hint="Check that the profile matches the device's firmware.",
                )
            if not self._halted:
                self._sent = None
                self._poke()
            return
        if item.kind == "ack":
            self._naks = 0
        if item.kind == "status":
            self._status = dict(item.fields)
            self._status_event.set()

    def _emit_sent(self, target: Target) -> None:
        scale = self.profile.intensity
        freq = None
        if target.frequency is not None and self.profile.frequency is not None:
            freq = self.profile.frequency.from_device(target.frequency)
        self.emit(
            SetpointSent(
                self._t(),
                target.levels,
                tuple(scale.from_device(v) for v in target.levels),
                freq,
                target.heat,
                self._mode_names.get(target.mode) if target.mode is not None else None,
                round(self._ceiling, 6),
            )
        )

    def _t(self) -> float:
        return asyncio.get_running_loop().time() - self.origin


__all__ = ["Device", "DeviceError", "LinkLost", "Target"]

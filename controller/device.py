"""The device facade: the only path to the wire, applying the run-time safety layer.

Every byte to a cushion leaves through `Device._send`, and through the `Link` it owns.
Setpoints are clamped to the zone caps and to a ceiling that climbs only at the ramp rate
and drops to zero on every open, resume, reconnect and device reset; updates are coalesced
(latest value wins); a halt pre-empts everything. The reader, writer and watch loops live
in a `TaskGroup` started by `__aenter__` and cancelled and awaited by `__aexit__`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from controller.absolute import AbsoluteWriter
from controller.ceiling import EPS, RampCeiling, capped, quantize_matrix
from controller.clock import sleep_until
from controller.errors import DeviceError, DeviceTimeout, LinkLost
from controller.events import (
    AllOff,
    ClampApplied,
    DeviceReset,
    Emit,
    Fault,
    LinkDown,
    LinkUp,
)
from controller.fallback import fallback_text
from controller.link import Link
from controller.replies import ReplyBook
from controller.safety import zone_caps
from controller.shield import finish
from controller.stepping import SteppingWriter
from controller.target import Target, make_target, sent_event
from controller.timeline import Setpoint
from controller.watch import Watch
from firmware_profiles import Codec
from firmware_profiles.commands import (
    BadFrame,
    Command,
    Keepalive,
    Query,
    Reply,
    Stop,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    import numpy as np

    from controller.limits import SafetyLimits
    from controller.transports.base import Transport
    from firmware_profiles import Profile

log = logging.getLogger(__name__)

_STOP_DELIVERY_S = 10.0
_REAL_REPLY_FLOOR_S = 0.1
# Stay this far under the device's update rate: USB adapters and radios bunch frames up.
_RATE_MARGIN = 1.1
_REAL_JITTER_S = 0.002
# On a sped-up simulator clock, renew leases this much real time earlier than half-life: a
# renewal 5 ms late in real time is half a second late at --speed 100, and the lease lapses.
_REAL_LEASE_MARGIN_S = 0.01
# Frames a halt lets through, and frames that leave the outputs as they are.
_UNGATED = (Stop, Keepalive, Query)
_QUIET = (Keepalive, Query)


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
        on_reset: Callable[[], None] | None = None,
    ) -> None:
        self.link = Link(transport)
        self.reconnect = reconnect
        self.on_link = on_link
        self.on_reset = on_reset
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
        self._desired = Setpoint((0.0,) * self._n)
        self._dirty = asyncio.Event()
        self._halted = True  # nothing goes out until `open` sent the all-off and `resume` ran
        self._final = False
        self._sent: Target | None = None
        self._sent_serial = 0  # bumped whenever levels on the wire change
        self._ceiling = RampCeiling(limits.ramp_per_s)
        self._binding: set[int] = set()
        self._last_update_t = float("-inf")
        self.replies = ReplyBook(self._n, profile.limits.reply_timeout_s, profile.intensity.min)
        self._acks = bool(profile.limits.ack_every_command)
        self._polls = profile.supports("query") and profile.supports("status")
        self._opened = False
        self._off_written = False  # the last output-changing frame written was the all-off
        self._closing = False
        self._writing = False
        self._fresh = False
        self._writer_due: float | None = None
        self._stepping = profile.control == "stepping"
        self._absolute = AbsoluteWriter(profile, self._send)
        self._stepper = SteppingWriter(profile, self.replies, self._send, lambda: self._halted)
        self._tasks: asyncio.TaskGroup | None = None
        self._children: list[asyncio.Task[None]] = []
        self._disobeyed = ""  # set by verify_outputs: the cushion holds levels it was not sent
        self._fault: asyncio.Future[DeviceError] | None = None
        self._watch = Watch(
            profile,
            self.replies,
            self.link,
            self._send,
            self._poll,
            lambda: self._writing,
            lambda: self._final,
        )
        self.last_all_off: AllOff | None = None
        # The loop's clock, bound by `open`: read for every frame, and cheaper than
        # asyncio.get_running_loop().time() each time.
        self._now: Callable[[], float] = _loop_time

    @property
    def transport(self) -> Transport:
        """Return the transport this device's link drives."""
        return self.link.transport

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the link and put the cushion in a known state: everything off."""
        loop = asyncio.get_running_loop()
        self._now = loop.time
        # A sped-up simulator clock shrinks real reply time too; keep a floor in real time.
        speed = float(getattr(loop, "speed", 1.0))
        self.replies.reply_timeout_s = max(
            self.profile.limits.reply_timeout_s, _REAL_REPLY_FLOOR_S * speed
        )
        self._min_interval = (
            _RATE_MARGIN / self.profile.limits.max_update_hz + _REAL_JITTER_S * speed
        )
        self._stepper.min_interval = self._watch.retry_s = self._min_interval
        lease = self.profile.limits.lease_s
        if lease and speed > 1:
            self._absolute.renew_after_s = max(
                self._min_interval, lease / 2 - _REAL_LEASE_MARGIN_S * speed
            )
        async with contextlib.AsyncExitStack() as undo:
            await self.link.open()
            undo.push_async_callback(self.link.close)  # a half-done open is unwound
            self._ceiling.reset(loop.time())
            self._opened = True
            if not await self._send(Stop()):
                raise LinkLost("the link dropped before the first all-off could be written.")
            self._sent = Target((0,) * self._n)
            undo.pop_all()

    async def close(self, reason: str = "session over") -> AllOff | None:
        """Write the final all-off (bounded, shielded), stop the loops, close the link.

        Never raises but `CancelledError`, and only after the all-off and the close ran.
        Returns the all-off report (None if the device was never opened).
        """
        self._halted = self._final = self._closing = True
        report: AllOff | None = None
        cancelled = False
        try:
            if self._opened:
                report, cancelled = await finish(self._final_stop(reason), _STOP_DELIVERY_S + 1)
        finally:
            self._watch.cancel()
            for task in self._children:
                task.cancel()
            if self._children:
                _, again = await finish(asyncio.wait(self._children), 1.0)
                cancelled = cancelled or again
            _, again = await finish(self.link.close(), 5.0)
            cancelled = cancelled or again
            self._opened = False
        if cancelled:
            raise asyncio.CancelledError
        return report

    async def __aenter__(self) -> Device:
        async with contextlib.AsyncExitStack() as undo:
            await self.open()
            undo.push_async_callback(self.close)
            self._fault = asyncio.get_running_loop().create_future()
            tasks = asyncio.TaskGroup()
            await tasks.__aenter__()
            self._tasks = tasks
            for name, coro in (
                ("cushion-writer", self._writer_loop()),
                ("cushion-reader", self._reader_loop()),
                ("cushion-watch", self._watch.run()),
            ):
                self._children.append(tasks.create_task(self._guard(coro), name=name))
            undo.pop_all()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self.close()
        finally:
            tasks, self._tasks = self._tasks, None
            if tasks is not None:
                await tasks.__aexit__(None, None, None)

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run one loop; a device fault ends it and is handed to whoever waits in `serve`."""
        try:
            await coro
        except DeviceError as exc:
            self._failed(exc)

    def _failed(self, exc: DeviceError) -> None:
        """Halt and hand a loop's device fault to `serve` (unless closing; once only)."""
        if self._closing:
            return
        self._halted = True
        if self._fault is not None and not self._fault.done():
            self._fault.set_result(exc)

    async def serve(self) -> None:
        """Wait until the device fails, and raise the fault (its loops run on their own)."""
        if self._fault is None:
            raise RuntimeError("use 'async with Device(...)' before serve()")
        raise await asyncio.shield(self._fault)

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
        now = self._now()
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
        renew = self._absolute.due_at(self._sent_levels()) if lease else None
        if self._binding or (renew is not None and (due is None or renew < due)):
            self._dirty.set()  # the writer must (re)arm its ceiling or lease timer

    async def halt(self, reason: str, *, final: bool = True) -> None:
        """Turn every output off now, ahead of anything queued; `final` forbids a resume."""
        self._halted = True
        self._final = self._final or final
        self._desired = Setpoint((0.0,) * self._n)
        sent = await self._send(Stop())
        self._sent = Target((0,) * self._n, None, None, self._sent.mode if self._sent else None)
        self._sent_serial += 1
        self.emit(self._all_off(sent, reason, None))

    def resume(self) -> None:
        """Let outputs flow again, ramping from zero (after open, pause or reconnect)."""
        if self._final:
            return
        self._ceiling.reset(asyncio.get_running_loop().time())
        self._halted = False
        self._poke()

    @property
    def ceiling(self) -> float:
        """Return the run-time ceiling (0..1) outputs currently play under."""
        return self._ceiling.value

    # -- background work -------------------------------------------------------------------

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
                    renew = self._absolute.due_at(self._sent.levels)
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
            renewal = self._absolute.is_due(self._sent_levels(), loop.time())
            if not (fresh or self._binding or renewal):
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
            self._sent_serial += 1  # a status asked for before this cannot judge it
            if self._stepping:
                await self._apply_stepping(target)
            else:
                await self._apply_absolute(target)
        elif lease and any(target.levels) and self._absolute.is_due(target.levels, now):
            self._last_update_t = now
            await self._renew_lease()

    async def _reader_loop(self) -> None:
        parser = self.codec.reply_parser()

        def take(data: bytes) -> None:
            """Handle replies the transport hands over, as this loop handles what `read` gave."""
            try:
                for item in parser.feed(data):
                    self._on_reply(item)
            except DeviceError as exc:
                self._failed(exc)  # now, as `_guard` would have from this loop
                raise  # and the transport ends this loop's `read` with it

        self.link.hand_replies_to(take)
        while True:
            try:
                data = await self.link.read()
            except LinkLost as exc:
                if self._closing:
                    return
                if not self.reconnect:
                    self.link.lost()
                    raise
                self._link_lost(str(exc))
                await self._restore()
                parser = self.codec.reply_parser()
                continue
            for item in parser.feed(data):
                self._on_reply(item)

    def _link_lost(self, why: str) -> None:
        """Treat every output as off and tell the session; the device's watchdog does the rest."""
        if not self.link.lost():
            return
        self._off_written = False
        self._halted = True
        self.replies.forget()
        self.emit(LinkDown(self._t(), why))
        if self.on_link is not None:
            self.on_link(False)

    async def _restore(self) -> None:
        """Reconnect with backoff and jitter; the first frame on the new link is all-off."""

        def failed(attempt: int, exc: DeviceError) -> None:
            self.emit(Fault(self._t(), f"reconnect attempt {attempt} failed: {exc}"))

        await self.link.reconnect(failed)
        await self._send(Stop())
        self._sent = Target((0,) * self._n)
        self._sent_serial += 1
        self._ceiling.reset(asyncio.get_running_loop().time())
        self.emit(LinkUp(self._t()))
        if self.on_link is not None and not self._final:
            self.on_link(True)

    async def _poll(self) -> None:
        """Ask for a status; a restarted cushion shows levels it was not sent."""
        serial, losses = self._sent_serial, self.link.losses
        try:
            if not await self._stepper.query():
                return  # not written: the link is down, and its loss is handled elsewhere
        except DeviceTimeout:
            if self.link.losses != losses or not self.link.up.is_set() or self._closing:
                return  # the link dropped meanwhile: the reconnect, not a timeout, handles it
            raise
        sent = self._sent
        if sent is None or self._halted or serial != self._sent_serial:
            return  # nothing to compare, or the outputs changed while the query was out
        evidence = self.replies.mismatch(sent.levels, sent.frequency, sent.heat)
        if evidence is None:
            return
        if self.replies.lapsed(sent.levels):
            # Some zones fell to off, the rest hold: their leases ran out on the cushion (a
            # renewal came late). Not a restart, but those zones must not leap back up.
            self.emit(Fault(self._t(), f"{evidence}: a lease ran out; ramping up again"))
            self._ceiling.reset(asyncio.get_running_loop().time())
            self._sent = None  # resend every zone, under the ceiling from zero
            self._poke()
            return
        await self._device_reset(evidence)

    def _booted(self) -> None:
        """The cushion announced it has started: whatever it held is gone, so is our view."""
        if self._closing or self._tasks is None:
            return  # at open, before the first stop: nothing was sent that it could forget
        was_halted = self._halted
        # At once, in this callback: an update already queued must not reach the rebooted
        # cushion with the old levels before the reset is handled.
        self._halted = True
        self._ceiling.reset(self._now())
        self._sent = None  # modes, frequency, heat and leases were forgotten too
        self._sent_serial += 1
        evidence = "the cushion sent its start-up frame (it restarted)"
        if was_halted:
            # Paused (or between sessions): outputs are off already; the next resume ramps
            # from zero and resends everything.
            self.emit(DeviceReset(self._t(), evidence))
            return
        self._children.append(
            self._tasks.create_task(self._guard(self._device_reset(evidence)), name="cushion-reset")
        )

    async def _device_reset(self, evidence: str) -> None:
        """Handle a cushion that restarted: all-off, ceiling from zero, tell the session."""
        self.emit(DeviceReset(self._t(), evidence))
        await self.halt("the cushion restarted", final=False)
        self._ceiling.reset(asyncio.get_running_loop().time())
        if self.on_reset is not None:
            self.on_reset()

    # -- the run-time envelope ---------------------------------------------------------------

    def quantize_levels(self, levels: np.ndarray) -> np.ndarray:
        """Return the device levels (samples x zones) for intensities under the zone caps."""
        return quantize_matrix(levels, self._caps, self.profile.intensity)

    def _clamp(self, sp: Setpoint, now: float) -> Target:
        allowed = self._ceiling.allowed(now)
        out = capped(sp.levels, self._caps)
        top = max(out, default=0.0)
        # EPS is a tolerance for comparing, never an allowance: recorded as the ceiling it
        # would add up, update after update, past the ramp rate (found by the oracle).
        if top > allowed + EPS:
            binding: set[int] = set()
            for z, value in enumerate(out):
                if value > allowed + EPS:
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
        # Every output is <= allowed, so the ceiling never climbs faster than the ramp rate.
        self._ceiling.rise(min(top, allowed), now)
        return make_target(sp, out, self.profile, self.limits.heat_max)

    # -- turning targets into commands ---------------------------------------------------------

    async def _apply_absolute(self, target: Target) -> None:
        old = self._sent
        if old is None or target.levels != old.levels:
            self._sent_serial += 1
        await self._absolute.write(target, old, self._now())
        if self._halted:
            return  # a halt overtook this update while it was being written
        self._sent = target
        self._emit_sent(target)

    async def _renew_lease(self) -> None:
        """Renew the running zones' leases, after checking the cushion still holds them."""
        target = self._sent
        if target is None or not self.profile.limits.lease_s:
            return
        if self._polls and self._tasks is not None:  # (a status needs the reader loop)
            # A cushion that restarted since the last poll must not get its old levels back
            # by a renewal: check the status first (renewals come at half the lease, so the
            # reply time fits).
            await self._poll()
            if self._halted or self._sent is not target:
                return
        await self._absolute.renew(target.levels, asyncio.get_running_loop().time())

    async def _apply_stepping(self, target: Target) -> None:
        """Walk a button-style cushion to the target one confirmed press at a time."""
        known = max(self._sent.levels) if self._sent else 0
        if self._polls and self._sent is not None and self._tasks is not None:
            # Presses move from where the cushion is: one that restarted would be walked
            # straight back up to the old level. Look first.
            if not await self._stepper.query():
                return  # the link is down: nothing to press on
            sent = self._sent
            evidence = self.replies.mismatch(sent.levels, sent.frequency, sent.heat)
            if evidence is not None:
                await self._device_reset(evidence)
                return

        def want() -> int:
            clamped = self._clamp(self._desired, asyncio.get_running_loop().time())
            return max(clamped.levels, default=0)

        level, mode = await self._stepper.walk(target.mode, known, want)
        if self._halted:
            return
        self._sent_serial += 1
        final = Target(
            (level,) * self._n, target.frequency, target.heat, mode if mode >= 0 else None
        )
        self._sent = final
        self._emit_sent(final)

    # -- the wire ----------------------------------------------------------------------------

    async def _send(self, command: Command) -> bool:
        """Encode and write one command: the single place bytes leave for the cushion."""
        if self._halted and not isinstance(command, _UNGATED):
            return False  # a halt always wins over updates that were already on their way
        if not self.link.up.is_set():
            return False  # nothing to write to; all-off goes first once the link is back
        frame = self.codec.encode(command)
        now = self._now()
        if self._acks and not isinstance(command, Query):
            self.replies.owe(now)
        self._watch.last_frame_t = now
        try:
            await self.link.write(frame)
        except LinkLost as exc:
            self._off_written = False
            if not self.reconnect or self._closing:
                self.link.lost()
                if isinstance(command, Stop):
                    return False  # the caller reports the stop as not delivered
                raise
            self._link_lost(str(exc))  # the reader loop reconnects
            return False
        if not isinstance(command, _QUIET):
            self._off_written = isinstance(command, Stop)
        return True

    async def _final_stop(self, reason: str) -> AllOff:
        """Write the last all-off; with acks, wait for the cushion to confirm it."""
        link = self.link
        if not link.up.is_set() and self.reconnect and not link.closed:
            # A stop asked for while the link was down is delivered on reconnect.
            with contextlib.suppress(DeviceError, TimeoutError):
                await asyncio.wait_for(link.up.wait(), _STOP_DELIVERY_S)
        acks_before = self.replies.acks
        owed = len(self.replies.pending)
        sent = self._off_written and link.up.is_set()
        if not sent:
            # Written once only: on a device whose "off" is a toggle, a second would undo it.
            try:
                sent = await self._send(Stop())
            except (DeviceError, OSError):
                sent = False
            owed += 1
        confirmed: bool | None = None
        if sent and self._acks:
            timeout = max(0.5, self.replies.reply_timeout_s)
            confirmed = await self.replies.acked(acks_before + owed, timeout)
        still_on = self._disobeyed
        if sent and still_on:
            # Acked and ignored: an ack is no proof, the cushion's own status is.
            report = AllOff(self._t(), True, reason, False, fallback_text(self.profile), still_on)
            self.last_all_off = report
        else:
            report = self._all_off(sent, reason, confirmed)
        self.emit(report)
        return report

    async def verify_outputs(self) -> None:
        """Before a session's last stop, ask the status: does the cushion hold what it was sent?

        Asked before the stop, not after, so the all-off stays the last frame on the wire;
        nothing is in flight then (the plan is over). A cushion that acked and ignored its
        commands shows other levels: the all-off will not be reported as done.
        """
        sent = self._sent
        if not self._polls or self._tasks is None or sent is None or not self.link.up.is_set():
            return
        try:
            if not await self._stepper.query():
                return
        except (DeviceError, OSError):
            return  # no answer: the watch reports the silence; the ack is all there is
        shown = self.replies.reported_levels(self._n)
        if shown is not None and shown != sent.levels and any(
            level > self.replies.off_level for level in shown
        ):
            self._disobeyed = (f"the cushion's status shows levels {shown} where it was sent "
                               f"{sent.levels}: it does not obey its commands")

    def _all_off(self, sent: bool, reason: str, confirmed: bool | None) -> AllOff:
        report = AllOff(
            self._t(), sent, reason, confirmed, "" if sent else fallback_text(self.profile)
        )
        self.last_all_off = report
        return report

    def _on_reply(self, item: Reply | BadFrame) -> None:
        if isinstance(item, BadFrame):
            self.emit(Fault(self._t(), self.replies.bad_frame(item)))
            return
        if item.kind == "boot":
            self._booted()
            return
        fault = self.replies.reply(item)
        if fault is not None:
            self.emit(Fault(self._t(), fault))
            # A refused command left the device as it was: resend the whole state next time.
            if not self._halted:
                self._sent = None
                self._poke()

    def _emit_sent(self, target: Target) -> None:
        self.emit(sent_event(self._t(), target, self.profile, self._ceiling.value))

    def _sent_levels(self) -> tuple[int, ...]:
        return self._sent.levels if self._sent is not None else ()

    def _t(self) -> float:
        return self._now() - self.origin


def _loop_time() -> float:
    """Return the running loop's time (s): the device's clock until `open` binds the loop's."""
    return asyncio.get_running_loop().time()


__all__ = ["Device", "DeviceError", "LinkLost", "Target"]

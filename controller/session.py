"""The session runner: plays a planned timeline on a device against absolute deadlines."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from controller.clock import SPIN_MARGIN_S, is_real_time, sleep_until
from controller.errors import DeviceError, SafetyStop
from controller.events import (
    ClampApplied,
    Emit,
    HeatSwitched,
    Paused,
    PhaseStarted,
    Resumed,
    ScaleChanged,
    SessionEnded,
    StepStarted,
    StopRequested,
)
from controller.timeline import Setpoint

if TYPE_CHECKING:
    from controller.device import Device
    from controller.events import AllOff
    from controller.timeline import Timeline

EXIT_DONE = 0
EXIT_BAD_INPUT = 2
EXIT_DEVICE = 3
EXIT_SAFETY = 4
EXIT_INTERRUPTED = 130

# A user's stop lowers the outputs over this long instead of cutting them (emergency stop cuts).
STOP_RAMP_S = 3.0
# The user's intensity scale (the - and + keys): steps of a tenth of the planned output,
# never above the plan (so never above a cap) and never below a tenth of it.
SCALE_STEP = 0.1
SCALE_MIN = 0.1


@dataclass(frozen=True, slots=True)
class SessionResult:
    """How a session ended and the exit code the CLI returns."""

    outcome: str
    exit_code: int
    message: str = ""
    all_off: AllOff | None = None  # the device's final all-off report, once it has closed


class Session:
    """Runs one timeline on one device; pause, resume, stop and emergency stop at any time."""

    def __init__(
        self, timeline: Timeline, device: Device, *, emit: Emit, auto_resume: bool = False
    ) -> None:
        self.timeline = timeline
        self.device = device
        self.emit = emit
        self.auto_resume = auto_resume
        device.on_link = self.link_changed
        device.on_reset = self.device_reset
        self.origin = 0.0
        self._position_s = 0.0
        self._paused = False
        self._resume = asyncio.Event()
        self._stop_reason: str | None = None
        self._emergency: str | None = None
        self._exit_code = EXIT_DONE
        self._outcome = "stopped"
        self._pause_reason = "paused"
        self._holding = False
        self._scale = 1.0
        self._heat_on = True  # the user's heat switch; on plays the plan's heat, never more
        self._planned: Setpoint | None = None  # the plan's output in force, before the scale
        self._waiter: asyncio.Future[None] | None = None  # _wait_until's, while it waits

    # -- control, callable from any task, a signal handler or a key press -----------------

    def pause(self, reason: str = "paused by the user") -> None:
        """Turn outputs off and hold the program where it is."""
        if not self._paused and self._stop_reason is None:
            self._paused = True
            self._resume.clear()
            self._pause_reason = reason
            self.emit(Paused(self._t(), reason))
            self._nudge()

    def resume(self) -> None:
        """Continue a paused program, ramping up from zero."""
        if self._paused:
            self._paused = False
            self._resume.set()
            if not self._holding:
                # Resumed before the hold began (a link back at once): the device was halted
                # by the loss itself, so let it flow again, from zero.
                self.device.resume()
                self.emit(Resumed(self._t()))

    def stop(self, reason: str = "stopped by the user", *, exit_code: int = EXIT_DONE) -> None:
        """End the session with a short controlled ramp-down."""
        if self._stop_reason is None:
            self._stop_reason = reason
            self._exit_code = exit_code
            self.emit(StopRequested(self._t(), reason, False))
        self._resume.set()
        self._nudge()

    async def emergency_stop(
        self, reason: str = "emergency stop", *, exit_code: int = EXIT_INTERRUPTED
    ) -> None:
        """Cut every output at once, bypassing the plan, the queue and the slew limit."""
        if self._emergency is None:
            self._emergency = reason
            self._stop_reason = self._stop_reason or reason
            self._exit_code = exit_code
            self.emit(StopRequested(self._t(), reason, True))
        self._resume.set()
        self._nudge()
        await self.device.halt(reason, final=True)

    def scale_by(self, steps: int) -> float:
        """Scale the intensity by `steps` tenths of the plan (within SCALE_MIN..1); return it.

        Lower takes effect at once; higher still climbs under the device's ramp ceiling.
        """
        if self._stop_reason is not None:
            return self._scale
        factor = round(min(1.0, max(SCALE_MIN, self._scale + steps * SCALE_STEP)), 6)
        if factor != self._scale:
            self._scale = factor
            self.emit(ScaleChanged(self._t(), factor))
            if self._planned is not None:
                # Through the device's one path, which clamps again: caps, then the ceiling.
                self.device.set(self._scaled(self._planned))
        return factor

    def set_heat(self, on: bool) -> bool:
        """Switch heat off for the rest of the session, or back on to the plan's; return it.

        On never adds heat the plan did not have: the envelope and the screening decided it.
        """
        if self._stop_reason is None and on != self._heat_on:
            self._heat_on = on
            self.emit(HeatSwitched(self._t(), on))
            if self._planned is not None:
                self.device.set(self._scaled(self._planned))
        return self._heat_on

    @property
    def heat_on(self) -> bool:
        """Tell whether the user's heat switch is on (the plan may still have no heat)."""
        return self._heat_on

    @property
    def scale(self) -> float:
        """Return the user's intensity factor (0..1 of the planned output)."""
        return self._scale

    def link_changed(self, up: bool) -> None:
        """Pause when the link drops; resume when it is back only if auto-resume was asked."""
        if not up:
            self.pause("link lost")
        elif self.auto_resume:
            self.resume()

    def device_reset(self) -> None:
        """The cushion restarted by itself (outputs are off): go on from zero only if asked."""
        if self.auto_resume:
            self.pause("the cushion restarted")
            self.resume()
            return
        # Nobody asked to carry on after a restart: end here, outputs off, and say why.
        if self._stop_reason is None:
            reason = "the cushion restarted by itself during the session"
            self._emergency = self._stop_reason = reason
            self._exit_code = EXIT_SAFETY
            self._outcome = "safety"
            self.emit(StopRequested(self._t(), reason, True))
        self._resume.set()
        self._nudge()

    @property
    def paused(self) -> bool:
        """Tell whether the session is paused (by the user or by a lost link)."""
        return self._paused

    @property
    def position_s(self) -> float:
        """Return how far into the program the session is, in seconds."""
        return self._position_s

    # -- running --------------------------------------------------------------------------

    async def run(self) -> SessionResult:
        """Play the timeline to its end or until stopped; the device turns off on every path."""
        loop = asyncio.get_running_loop()
        self.origin = self.device.origin = loop.time()
        self.device.resume()
        result: SessionResult
        _hold_collector()
        try:
            async with asyncio.TaskGroup() as tg:
                serving = tg.create_task(self.device.serve(), name="cushion-device")
                result = await self._play()
                serving.cancel()
        except* DeviceError as group:
            result = SessionResult("device-error", EXIT_DEVICE, str(_first(group)))
        except* SafetyStop as group:
            result = SessionResult("safety", EXIT_SAFETY, str(_first(group)))
        finally:
            _release_collector()
        self.emit(
            SessionEnded(
                self._t(),
                result.outcome,
                result.exit_code,
                {"message": result.message, "position_s": round(self._position_s, 3)},
            )
        )
        return result

    async def _play(self) -> SessionResult:
        tl = self.timeline
        times, setpoints = tl.times, tl.setpoints
        markers = tl.markers
        clamps = sorted(tl.clamps, key=lambda c: c.when_s)
        mi = ci = 0
        shift = self.origin  # wall time of program position 0, moved on by pauses
        wakes = self._wake_points()
        w = 0
        i = 0
        while w < len(wakes):
            i = wakes[w]
            if self._stop_reason is not None:
                break
            if self._paused:
                shift += await self._hold()
                if w and self._stop_reason is None:
                    # The output in force when the pause came, again (ramping from zero).
                    await self._offer(setpoints[wakes[w - 1]])
                continue
            t = times[i]
            if await self._wait_until(shift + t):
                continue  # paused or stopped while waiting: act on it now
            self._position_s = t
            while mi < len(markers) and markers[mi].t_s <= t:
                m = markers[mi]
                if m.kind == "phase":
                    self.emit(PhaseStarted(self._t(), m.label, m.phase, m.duration_s))
                else:
                    self.emit(StepStarted(self._t(), m.label, m.phase, m.repetitions, m.duration_s))
                mi += 1
            while ci < len(clamps) and clamps[ci].when_s <= t:
                c = clamps[ci]  # emitted when its wish and its result are both true
                self.emit(ClampApplied(self._t(), c.zone, c.rule, c.wanted, c.got))
                ci += 1
            await self._offer(setpoints[i])
            w += 1
            i += 1
        if self._stop_reason is not None:
            return await self._finish_stop(setpoints[i - 1] if i else None)
        # The last stretch holds its output to the end, still listening for pause and stop.
        while await self._wait_until(shift + tl.duration_s):
            if self._stop_reason is not None:
                return await self._finish_stop(setpoints[i - 1] if i else None)
            shift += await self._hold()
            if i and self._stop_reason is None:
                await self._offer(setpoints[i - 1])
        self._position_s = tl.duration_s
        await self.device.verify_outputs()
        await self.device.halt("program finished", final=True)
        return SessionResult("done", EXIT_DONE, "program finished")

    async def _finish_stop(self, last: Setpoint | None) -> SessionResult:
        """End on a stop: cut at once for an emergency, otherwise ramp down first."""
        assert self._stop_reason is not None
        if self._emergency is not None:
            return SessionResult(self._outcome, self._exit_code, self._emergency)
        await self._ramp_down(None if last is None else self._scaled(last))
        if self._emergency is not None:
            # Cut during the ramp-down (a second Ctrl-C): that is how it ended.
            return SessionResult(self._outcome, self._exit_code, self._emergency)
        await self.device.halt(self._stop_reason, final=True)
        return SessionResult("stopped", self._exit_code, self._stop_reason)

    async def _wait_until(self, deadline: float) -> bool:
        """Sleep until `deadline`; return True at once if a pause or stop comes first."""
        if self._paused or self._stop_reason is not None:
            return True
        loop = asyncio.get_running_loop()
        # Wake a little early on a real clock, then sleep_until spins onto the deadline.
        early = SPIN_MARGIN_S if is_real_time(loop) else 0.0
        # A bare future, not an asyncio.Event: the same wake-up (timer, then the task on the
        # next turn), without an Event's waiter bookkeeping on every sample.
        waiter = self._waiter = loop.create_future()
        handle = loop.call_at(deadline - early, _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            handle.cancel()
        if self._paused or self._stop_reason is not None:
            return True
        if loop.time() < deadline:  # woken early (a real clock): spin onto the deadline
            await sleep_until(deadline)
        return False

    def _nudge(self) -> None:
        """Wake `_wait_until` now: a pause or stop came."""
        if self._waiter is not None:
            _wake(self._waiter)

    def _wake_points(self) -> list[int]:
        """Return the samples worth waking for: the wire output changes, or a marker is due."""
        tl = self.timeline
        if not tl.setpoints:
            return []
        marks = {tl.index_at(m.t_s) for m in tl.markers}
        marks.update(tl.index_at(c.when_s) for c in tl.clamps)
        wire = self.device.quantize_levels(np.asarray(tl.level_matrix(), dtype=float))
        changed = np.ones(len(tl.setpoints), dtype=bool)
        changed[1:] = (wire[1:] != wire[:-1]).any(axis=1)
        others = [(sp.frequency_hz, sp.heat, sp.mode) for sp in tl.setpoints]
        return [
            i
            for i in range(len(others))
            if changed[i] or i in marks or (i and others[i] != others[i - 1])
        ]

    async def _offer(self, planned: Setpoint) -> None:
        """Hand the plan's output, under the user's scale, to the device."""
        self._planned = planned
        await self.device.offer(self._scaled(planned))

    def _scaled(self, sp: Setpoint) -> Setpoint:
        # Between wake points (where the unscaled wire output changes) a scaled output can lag
        # by at most one device level: it only ever plays lower than the plan, never higher.
        heat = sp.heat if self._heat_on or sp.heat is None else 0.0
        if self._scale >= 1.0:
            return sp if heat is sp.heat else Setpoint(sp.levels, sp.frequency_hz, heat, sp.mode)
        f = self._scale
        return Setpoint(tuple(v * f for v in sp.levels), sp.frequency_hz, heat, sp.mode)

    async def _hold(self) -> float:
        """Keep outputs off while paused; return how long the pause lasted."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        self._holding = True
        try:
            await self.device.halt(self._pause_reason, final=False)
            await self._resume.wait()
        finally:
            self._holding = False
        if self._stop_reason is None:
            self.device.resume()
            self.emit(Resumed(self._t()))
        return loop.time() - began

    async def _ramp_down(self, last: Setpoint | None) -> None:
        if last is None or not any(last.levels):
            return
        loop = asyncio.get_running_loop()
        start = loop.time()
        steps = 10
        for k in range(1, steps + 1):
            if self._emergency is not None:
                return
            f = 1.0 - k / steps
            self.device.set(
                Setpoint(tuple(v * f for v in last.levels), last.frequency_hz, None, last.mode)
            )
            await sleep_until(start + STOP_RAMP_S * k / steps)

    def _t(self) -> float:
        try:
            return asyncio.get_running_loop().time() - self.origin
        except RuntimeError:
            return 0.0


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


# The collector's third threshold (young passes before a full one) while a session plays:
# no full pass happens in practice (2**30 young passes are years of a session).
_NO_FULL_PASS = 1 << 30


class _Collector:
    """The sessions holding the collector in this process (a node runs several at once)."""

    holders = 0
    restore: tuple[int, int, int] | None = None  # None: the heap was frozen by someone else


def _hold_collector() -> None:
    """Keep the collector's full passes out of the sessions playing; `_release_collector` after.

    What is alive at the first start (modules, profile, plan) is frozen: it outlives the
    session anyway, and every full pass would walk all of it again. And no full pass runs while
    a session plays (young passes still do): each walks everything made since, and finds next
    to nothing to free (a 26-minute vb6-binary run on the virtual clock had 3, 66-82 ms in all,
    that freed 0 objects); on a real clock each is a stall of tens of ms. A count, not
    `gc.get_freeze_count()` per start: that walks the frozen heap (9 ms a start in a node).
    """
    _Collector.holders += 1
    if _Collector.holders > 1:
        return
    if gc.get_freeze_count():  # frozen outside any session: leave the collector to its owner
        _Collector.restore = None
        return
    _Collector.restore = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(_Collector.restore[0], _Collector.restore[1], _NO_FULL_PASS)


def _release_collector() -> None:
    """Undo `_hold_collector` once the last session ends: the thresholds, the frozen heap."""
    _Collector.holders -= 1
    restore = _Collector.restore
    if _Collector.holders or restore is None:
        return
    _Collector.restore = None
    gc.set_threshold(*restore)
    gc.unfreeze()


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """Return the first leaf exception of a (possibly nested) exception group."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc

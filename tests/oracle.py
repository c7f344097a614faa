"""An independent reference model of the safety rules, to check what the cushion received.

The property tests elsewhere take their caps from the code under test (`zone_caps`). This
model computes every limit on its own, from two sources only:

- the profile's TOML file, read here with `tomllib` (not through the profile model): the
  control style, the intensity range, which zones are kidney zones, the update rate;
- the field values of a `SafetyLimits` (read, never computed by controller code).

and follows docs/safety.md:

- **Caps per zone**: ``max_intensity``; kidney zones also ``kidney_max_intensity``; in sparing
  mode (a sparing program, ``--sparing`` or ``limits.sparing``) ``sparing_max_intensity``;
  never above the device's own range. During the introductory window (the first
  ``intro_min_s`` of a session and the program's leading introductory phases)
  ``intro_max_intensity`` too.
- **Quantisation**: fractions become device levels rounding *down*
  (``min + floor(x * (max - min))``), so a cap in device units is that cap rounded down.
- **The ramp rule**: the ceiling (the highest intensity of any zone since the last
  (re)start) climbs at most ``ramp_per_s`` per second over any stretch of time, from zero
  after every start, resume, reconnect and device reset. On the wire it holds up to one device
  level (quantisation rounds down, so a level may be one step lower than the ceiling it was
  allowed, and the next step up then comes at once).
- **Final ramp-down**: in the last ``final_ramp_down_s`` no zone exceeds
  ``max_intensity * remaining / final_ramp_down_s`` (again up to one level).

A trace is what the simulated cushion recorded (`hil.recorder.Recorder`): the commanded level
of every zone over time and the frames it received. A (re)start is seen in the trace as a stop
frame received, a link (re)connected, a device reboot, or the device turning every output off
by itself (watchdog, auto-off, the last lease lapsing): in each case the next output must ramp
from zero again, never pick up a stale level.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hil.recorder import Event, Recorder

BUILTIN = Path(__file__).resolve().parent.parent / "firmware_profiles" / "builtin"
_EPS = 1e-9


@dataclass(frozen=True)
class Rules:
    """Every limit that applies on the wire, in fractions and in device levels."""

    profile: str
    control: str
    level_min: int
    level_max: int
    kidney: tuple[bool, ...]
    max_update_hz: float
    reply_timeout_s: float
    max_intensity: float
    kidney_max_intensity: float
    sparing_max_intensity: float
    intro_max_intensity: float
    intro_min_s: float
    ramp_per_s: float
    final_ramp_down_s: float
    sparing: bool

    @classmethod
    def of(cls, profile: str | Path, limits: object, *, sparing: bool = False) -> Rules:
        """Read a profile (built-in name or TOML path) and a `SafetyLimits`' fields."""
        path = Path(profile) if str(profile).endswith(".toml") else BUILTIN / f"{profile}.toml"
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        intensity = data["intensity"]
        lim = data["limits"]

        def field_of(name: str, default: float = 0.0) -> float:
            return float(getattr(limits, name, default))

        return cls(
            profile=data["profile"]["name"],
            control=data["profile"].get("control", "absolute"),
            level_min=int(intensity.get("min", 0)),
            level_max=int(intensity["max"]),
            kidney=tuple(bool(z.get("kidney", False)) for z in data["zone"]),
            max_update_hz=float(lim["max_update_hz"]),
            reply_timeout_s=float(lim.get("reply_timeout_s", 0.5)),
            max_intensity=field_of("max_intensity"),
            kidney_max_intensity=field_of("kidney_max_intensity"),
            sparing_max_intensity=field_of("sparing_max_intensity"),
            intro_max_intensity=field_of("intro_max_intensity"),
            intro_min_s=field_of("intro_min_s"),
            ramp_per_s=field_of("ramp_per_s"),
            final_ramp_down_s=field_of("final_ramp_down_s"),
            sparing=sparing or bool(getattr(limits, "sparing", False)),
        )

    # -- fractions and levels ------------------------------------------------------------------

    @property
    def zones(self) -> int:
        return len(self.kidney)

    @property
    def span(self) -> int:
        return self.level_max - self.level_min

    @property
    def quantum(self) -> float:
        """One device level as a fraction of the range."""
        return 1.0 / self.span

    def level(self, fraction: float) -> int:
        """Quantise a fraction down to a device level (0 or less is off, 1 or more the top)."""
        if not fraction > 0:  # also NaN
            return self.level_min
        if fraction >= 1:
            return self.level_max
        return self.level_min + math.floor(fraction * self.span + _EPS)

    def fraction(self, level: int) -> float:
        """Return a device level as a fraction of the range."""
        return (level - self.level_min) / self.span

    # -- caps ----------------------------------------------------------------------------------

    def cap(self, zone: int, *, intro: bool = False) -> float:
        """Return the highest fraction ``zone`` may reach (in the introductory window if asked)."""
        cap = min(1.0, self.max_intensity)
        if self.kidney[zone]:
            cap = min(cap, self.kidney_max_intensity)
        if self.sparing:
            cap = min(cap, self.sparing_max_intensity)
        if intro:
            cap = min(cap, self.intro_max_intensity)
        return cap

    def cap_level(self, zone: int, *, intro: bool = False) -> int:
        """Return the zone's cap in device levels (rounded down)."""
        return self.level(self.cap(zone, intro=intro))

    def update_latency_s(self) -> float:
        """Return how long a change may take to reach the wire (coalescing, button presses)."""
        interval = 1.1 / self.max_update_hz + 0.003
        if self.control == "stepping":
            # One confirmed press per level, each waiting up to a reply time-out for status.
            return (self.span + 1) * (interval + self.reply_timeout_s) + interval
        return 2 * interval + 0.01


def clean(value: float) -> float:
    """What a setpoint value may at most mean: NaN and negatives are off, above 1 is 1."""
    if math.isnan(value) or value <= 0:
        return 0.0
    return min(value, 1.0)


@dataclass
class Demand:
    """The setpoints a test asked the controller for, with the loop time of each request."""

    entries: list[tuple[float, tuple[float, ...]]] = field(default_factory=list)

    def add(self, t: float, levels: Sequence[float]) -> None:
        self.entries.append((t, tuple(levels)))

    def bound(self, zone: int, t: float, latency_s: float, *, stepping: bool = False) -> float:
        """Return the most the outputs may show for ``zone`` at ``t``: the highest (cleaned)
        request in force at any moment of ``[t - latency_s, t]``."""
        top = 0.0
        before: tuple[float, ...] | None = None
        for when, levels in self.entries:
            if when > t + _EPS:
                break
            values = levels if stepping else (levels[zone],)
            v = max((clean(x) for x in values), default=0.0)
            if when < t - latency_s:
                before = levels
                continue
            top = max(top, v)
        if before is not None:
            values = before if stepping else (before[zone],)
            top = max(top, max((clean(x) for x in values), default=0.0))
        return top


# -- the trace -------------------------------------------------------------------------------

_DEVICE_OFFS = ("watchdog", "auto_off", "lease_expired", "reboot")


def _restart(event: Event) -> str | None:
    """Tell whether an event begins a new ramp from zero, and why."""
    from firmware_profiles.commands import Stop

    if event.kind == "command" and isinstance(event.detail, Stop):
        return "stop frame"
    if event.kind == "link" and event.detail == "connected":
        return "link connected"
    if event.kind in _DEVICE_OFFS and event.kind != "lease_expired":
        return event.kind
    return None


def _ramp_violations(rules: Rules, recorder: Recorder) -> list[str]:
    """Walk the events in order: after each restart the ceiling climbs from zero.

    Only zones commanded since the restart count: a level the device kept although it was
    told to stop (an ignored stop frame) is not a rise, it is a fault of its own.
    """
    out: list[str] = []
    off, q = rules.level_min, rules.quantum
    levels = [off] * rules.zones
    fresh = [False] * rules.zones
    t0 = recorder.events[0].t if recorder.events else 0.0
    why = "the trace's start"
    history: list[tuple[float, float]] = [(t0, 0.0)]
    ceiling = 0.0
    lapse_t: float | None = None
    pending: float | None = None  # time of level changes not evaluated yet (one frame's)

    def evaluate(t: float) -> None:
        nonlocal ceiling
        top = max(
            (rules.fraction(lv) for lv, f in zip(levels, fresh, strict=True) if f), default=0.0
        )
        if top <= ceiling + _EPS:
            return
        ceiling = top
        for ta, ca in history:
            allowed = ca + rules.ramp_per_s * (t - ta) + q + 1e-6
            if ceiling > allowed:
                what = "first output" if len(history) == 1 else "ceiling"
                out.append(
                    f"t={t:.3f} {what} {ceiling:.3f} rose from {ca:.3f} at t={ta:.3f} "
                    f"(after {why} at t={t0:.3f}); the ramp rule allows {allowed:.3f}"
                )
                break
        history.append((t, ceiling))

    for event in recorder.events:
        if pending is not None and (event.kind != "level" or event.t != pending):
            evaluate(pending)  # every zone one frame set at one instant, taken together
            pending = None
        reason = _restart(event)
        if event.kind == "lease_expired":
            lapse_t = event.t
        if event.kind == "level":
            z, level = event.detail  # type: ignore[misc]
            levels[z], fresh[z] = level, True
            if lapse_t == event.t and all(lv == off for lv in levels):
                reason = "last lease lapsed"
            else:
                pending = event.t
        if reason is not None:
            t0, why = event.t, reason
            history, ceiling = [(t0, 0.0)], 0.0
            fresh = [False] * rules.zones
            pending = None
    if pending is not None:
        evaluate(pending)
    return out


def _changes(recorder: Recorder) -> list[tuple[float, int, int]]:
    """Return every commanded level change as (t, zone, level), in recording order."""
    # Never sort: changes at one instant (a set, then a stop) must keep their order.
    return [(e.t, *e.detail) for e in recorder.events if e.kind == "level"]  # type: ignore[misc]


def _states(recorder: Recorder) -> list[tuple[float, tuple[int, ...]]]:
    """Return (t, levels of every zone) after each moment any level changed."""
    changes = _changes(recorder)
    current = [recorder.off_level] * recorder.zone_count
    out: list[tuple[float, tuple[int, ...]]] = []
    for t, z, level in changes:
        current[z] = level
        if out and out[-1][0] == t:
            out[-1] = (t, tuple(current))  # several zones in one frame: the state after all
        else:
            out.append((t, tuple(current)))
    return out


@dataclass
class Check:
    """What to check a trace for, beyond the caps and the ramp rule that always apply."""

    demand: Demand | None = None  # outputs never above what was asked (NaN means off)
    intro_until_s: float | None = None  # loop time the introductory window ends
    session_end_s: float | None = None  # loop time the program ends (final ramp-down)
    off_at_end: bool = True


def violations(rules: Rules, recorder: Recorder, check: Check | None = None) -> list[str]:
    """Return every place the trace breaks a rule (empty: the trace is safe)."""
    check = check or Check()
    out: list[str] = []
    states = _states(recorder)
    n = rules.zones
    assert recorder.zone_count == n, (recorder.zone_count, n)
    q = rules.quantum
    # 1. Caps (and the device's own range), in device levels: every change, even one that a
    #    stop in the same instant undoes at once.
    changes = _changes(recorder)
    for t, z, level in changes:
        intro = check.intro_until_s is not None and t < check.intro_until_s - _EPS
        cap = rules.cap_level(z, intro=intro)
        if not rules.level_min <= level <= cap:
            why = "introductory cap" if intro and level <= rules.cap_level(z) else "cap"
            out.append(f"t={t:.3f} zone {z} at level {level} > {why} {cap}")
    # 2. The ramp rule, from zero after every restart.
    out.extend(_ramp_violations(rules, recorder))
    # 3. Never above what was asked for (NaN and negative mean off), allowing the update delay.
    if check.demand is not None:
        latency = rules.update_latency_s()
        stepping = rules.control == "stepping"
        for t, z, level in changes:
            if level != rules.level_min:
                asked = check.demand.bound(z, t, latency, stepping=stepping)
                if level > rules.level(asked):
                    out.append(
                        f"t={t:.3f} zone {z} at level {level} but at most {asked:.3f} "
                        f"(level {rules.level(asked)}) was asked for within {latency:.3f} s"
                    )
    # 4. The final ramp-down, up to one level and the update delay.
    if check.session_end_s is not None and rules.final_ramp_down_s > 0 and states:
        end, frd = check.session_end_s, rules.final_ramp_down_s
        slack_s = rules.update_latency_s()
        held = [*states[1:], (math.inf, ())]
        for (t, levels), (t_next, _) in zip(states, held, strict=True):
            until = min(t_next, end)
            remaining = end - until + slack_s
            if remaining >= frd:
                continue
            allowed = rules.max_intensity * max(0.0, remaining) / frd
            for z, level in enumerate(levels):
                if rules.fraction(level) > allowed + q + 1e-6:
                    out.append(
                        f"t={t:.3f}..{until:.3f} zone {z} at {rules.fraction(level):.3f} in the "
                        f"final ramp-down (allowed {allowed:.3f} with {remaining:.2f} s left)"
                    )
    # 5. All off at the end.
    if check.off_at_end and states and any(lv != rules.level_min for lv in states[-1][1]):
        out.append(f"outputs still on at the end: levels {states[-1][1]}")
    return out


def assert_safe(rules: Rules, recorder: Recorder, check: Check | None = None) -> None:
    """Fail with the first few violations if the trace breaks any rule."""
    found = violations(rules, recorder, check)
    assert not found, f"{len(found)} violation(s) on {rules.profile}: " + "; ".join(found[:5])

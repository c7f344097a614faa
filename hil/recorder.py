"""What the simulated cushion saw and did, as plain timestamped events, plus test assertions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from firmware_profiles.commands import Command

# Event kinds and their detail values:
#   "command"       the decoded Command (valid frame, whether obeyed or refused)
#   "bad_frame"     the BadFrame
#   "refused"       (Command, reason: str): out of range, unsupported, too fast, ...
#   "level"         (zone: int, level: int): a commanded zone level changed
#   "frequency"     raw device value
#   "heat"          heat level
#   "mode"          mode number
#   "power"         bool: powered on/off
#   "watchdog"      None: no valid frame for watchdog_s, outputs turned off
#   "auto_off"      None: powered for auto_off_s, outputs turned off
#   "lease_expired" zone: int
#   "reply"         the Reply sent (before any garbling fault)
#   "link"          str: "connected" | "hangup" | "disconnected"
#   "reboot"        None
#   "fault"         (fault kind: str, "begin" | "end"): a scheduled fault (hil.faults)
#   "rx_overflow"   dropped: int, bytes lost to a full input buffer
KINDS = frozenset(
    {
        "command",
        "bad_frame",
        "refused",
        "level",
        "frequency",
        "heat",
        "mode",
        "power",
        "watchdog",
        "auto_off",
        "lease_expired",
        "reply",
        "link",
        "reboot",
        "fault",
        "rx_overflow",
    }
)


class Event(NamedTuple):
    """One thing that happened at loop time ``t`` (s); a plain tuple ``(t, kind, detail)``."""

    t: float
    kind: str
    detail: object = None


# NamedTuple's generated __new__ is a Python function; recording sits on the per-frame path.
_new = tuple.__new__


@dataclass(slots=True)
class Recorder:
    """Append-only event log of one simulated cushion, with query and assertion helpers."""

    zone_count: int
    off_level: int = 0  # the device level that means off
    events: list[Event] = field(default_factory=list)
    _levels: list[list[tuple[float, int]]] = field(init=False)
    _commands: list[Command] = field(init=False, default_factory=list)
    _watchers: list[Callable[[Event], None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._levels = [[] for _ in range(self.zone_count)]

    def add(self, t: float, kind: str, detail: object = None) -> None:
        """Append an event at loop time ``t`` (s); use `add_level`/`add_command` for those."""
        event = _new(Event, (t, kind, detail))
        self.events.append(event)
        if self._watchers:
            self._tell(event)

    def add_level(self, t: float, zone: int, level: int) -> None:
        """Record that ``zone``'s commanded level changed to ``level`` at ``t`` (s)."""
        self._levels[zone].append((t, level))
        event = _new(Event, (t, "level", (zone, level)))
        self.events.append(event)
        if self._watchers:
            self._tell(event)

    def add_command(self, t: float, command: Command) -> None:
        """Record a decoded command received at ``t`` (s)."""
        self._commands.append(command)
        event = _new(Event, (t, "command", command))
        self.events.append(event)
        if self._watchers:
            self._tell(event)

    def subscribe(self, watcher: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``watcher(event)`` for every event from now on; returns the unsubscribe call.

        Watchers run inside the recording call (the firmware may be mid-command): they should
        only note the event or schedule work on the loop.
        """
        self._watchers.append(watcher)

        def unsubscribe() -> None:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

        return unsubscribe

    def _tell(self, event: Event) -> None:
        for watcher in tuple(self._watchers):
            watcher(event)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def clear(self) -> None:
        """Forget every event (current levels are kept as the new starting point)."""
        self.events.clear()
        self._commands.clear()
        self._levels = [[(0.0, lv[-1][1])] if lv else [] for lv in self._levels]

    def of(self, kind: str) -> list[Event]:
        """Return every event of one kind, in order."""
        return [e for e in self.events if e.kind == kind]

    def first(self, kind: str) -> Event | None:
        """Return the first event of ``kind``, or None."""
        return next((e for e in self.events if e.kind == kind), None)

    def last(self, kind: str) -> Event | None:
        """Return the last event of ``kind``, or None."""
        return next((e for e in reversed(self.events) if e.kind == kind), None)

    def count(self, kind: str) -> int:
        """Return how many events of ``kind`` were recorded."""
        return sum(1 for e in self.events if e.kind == kind)

    def commands(self, kind: type[Command] | None = None) -> list[Command]:
        """Return the decoded commands received, optionally only one class (e.g. ``SetZone``)."""
        if kind is None:
            return list(self._commands)
        return [c for c in self._commands if isinstance(c, kind)]

    def levels(self, zone: int) -> list[tuple[float, int]]:
        """Return the commanded level changes of one zone as ``(t, level)``, in order."""
        return list(self._levels[zone])

    def level_at(self, zone: int, t: float) -> int:
        """Return the commanded level of ``zone`` at loop time ``t`` (s); off before any change."""
        level = self.off_level
        for when, value in self._levels[zone]:
            if when > t:
                break
            level = value
        return level

    def max_level(self, zone: int | None = None) -> int:
        """Return the highest level ever commanded on ``zone`` (or on any zone)."""
        zones = range(self.zone_count) if zone is None else (zone,)
        return max((lv for z in zones for _, lv in self._levels[z]), default=self.off_level)

    def last_levels(self) -> tuple[int, ...]:
        """Return the current commanded level of every zone, profile order."""
        return tuple(lv[-1][1] if lv else self.off_level for lv in self._levels)

    def assert_all_off_at_end(self) -> None:
        """Fail unless every zone's commanded level is off (and heat is 0) now."""
        levels = self.last_levels()
        if any(level != self.off_level for level in levels):
            raise AssertionError(f"zones still on at the end: levels {levels}")
        heat = self.last("heat")
        if heat is not None and heat.detail != 0:
            raise AssertionError(f"heat still on at the end: level {heat.detail}")

    def assert_never_above(self, level: int, zone: int | None = None) -> None:
        """Fail if ``zone`` (or any zone) was ever commanded above ``level``."""
        highest = self.max_level(zone)
        if highest > level:
            where = "any zone" if zone is None else f"zone {zone}"
            raise AssertionError(f"{where} reached level {highest} > {level}")

    def assert_under(self, ceiling: Callable[[float], float], zone: int | None = None) -> None:
        """Fail if a commanded level ever exceeded ``ceiling(t)`` (levels) when it was set."""
        zones = range(self.zone_count) if zone is None else (zone,)
        for z in zones:
            for t, level in self._levels[z]:
                if level > ceiling(t):
                    raise AssertionError(
                        f"zone {z} set to {level} at t={t:.3f} above ceiling {ceiling(t):.3f}"
                    )

    def assert_no(self, kind: str) -> None:
        """Fail if any event of ``kind`` (e.g. ``"watchdog"``, ``"bad_frame"``) was recorded."""
        found = self.of(kind)
        if found:
            raise AssertionError(f"{len(found)} '{kind}' event(s), first: {found[0]}")

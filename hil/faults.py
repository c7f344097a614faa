"""Fault injection for the simulated cushion: switches, and timed schedules as data.

Two ways to make the simulated device misbehave:

- **Switches** (`Faults`, ``cushion.faults``): flip a field in a test, `Faults.reset` clears all.
- **A schedule** (`FaultSchedule`): a list of timed entries, loaded from TOML or JSON with
  `load_schedule` (or built in code), played on the cushion's loop clock by `apply_schedule`.
  Each entry names a ``kind``, when it begins (``at_s`` after ``after``: the moment the
  schedule is applied, or the nth occurrence of a recorder event) and for how long
  (``duration_s``; omitted: to the end). A schedule file::

      [[fault]]
      kind = "late_replies"        # replies held back ...
      at_s = 30                    # ... from 30 s after the schedule is applied
      duration_s = 10              # ... for 10 s
      params = { delay_s = 0.4 }

      [[fault]]
      kind = "reset"               # the firmware reboots and forgets its state
      after = "connected"          # counted from the first time a controller connects
      at_s = 120
      duration_s = 0.5             # deaf while it boots

Triggers (``after``): ``"start"`` (default), ``"connected"`` (a controller opened the link),
``"output_on"`` / ``"output_off"`` (the cushion powered on / off), ``"stop"`` (a stop frame
arrived; a controller's opening all-off is the first one, so a pause is usually the second),
or any recorder event as ``"kind"`` or ``"kind:detail"`` (``"command:SetAll"``,
``"refused:SetZone"``, ``"reply:nak"``, ``"watchdog"``); ``occurrence`` picks the nth.

Kinds (params in brackets, defaults shown):

- ``hang_up``: the device side closes every link (`SimulatedCushion.hang_up`); ``duration_s``
  is how long it stays out of reach (in-process link: bytes on a link opened meanwhile are
  lost both ways; PTY link: a fresh pty opens afterwards, on a new path).
- ``silence``: no replies (commands are still obeyed).
- ``deaf``: every incoming byte is ignored (the watchdog is not fed).
- ``late_replies`` [``delay_s = 0.5``]: every reply is held this long.
- ``garble``: one byte of every reply is corrupted.
- ``truncate`` [``keep_bytes``: half the frame]: only the first bytes of every reply are sent.
- ``split`` [``piece_bytes = 1``, ``gap_s = 0.002``]: replies arrive in pieces, this far apart.
- ``nak`` [``code = 2``, ``spare_stop = true``]: every command is refused with a nak (nothing
  on a profile without one) and not obeyed; the stop frame too unless ``spare_stop``.
- ``reset``: the firmware reboots: outputs off, timers, mode and half-received bytes forgotten,
  the next status shows the fresh state (no built-in profile declares a boot banner);
  ``duration_s`` is the boot time, deaf meanwhile.
- ``ignore_commands``: every frame is acked as usual, but outputs do not change (stop too).
- ``overheat`` [``temp_c = 48``]: the surface temperature reads this high (in the state, and in
  the status reply where the profile's status frame has a ``temp_c`` field).
- ``rx_buffer`` [``size = 16``, ``bytes_per_s = 1000``]: the firmware's input buffer holds
  ``size`` bytes and empties at ``bytes_per_s``; bytes arriving while it is full are lost.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from protocols.errors import InputError
from protocols.tomlsource import FieldError, validate

if TYPE_CHECKING:
    from hil.cushion import SimulatedCushion
    from hil.recorder import Event


@dataclass(slots=True)
class Faults:
    """Ways the simulated device misbehaves; all off by default."""

    silent: bool = False  # never reply (commands are still obeyed)
    garble_replies: bool = False  # corrupt one byte of every reply frame
    drop_rx: bool = False  # ignore every incoming byte (the watchdog is not fed)
    ignore_commands: bool = False  # decode and reply, but do not change outputs
    reply_delay_s: float = 0.0  # hold every reply this long before transmitting, s
    truncate_replies: int | None = None  # send only this many bytes of a reply (0: half)
    split_replies: int = 0  # deliver replies in pieces of this many bytes (0: whole)
    split_gap_s: float = 0.002  # time between two pieces of a split reply, s
    nak_all: int | None = None  # refuse every command with a nak of this code
    nak_spare_stop: bool = True  # ... but still obey (and ack) the stop frame
    overheat_c: float | None = None  # report this surface temperature, C
    rx_buffer: int | None = None  # input buffer size, bytes; bytes beyond it are lost
    rx_drain_bytes_per_s: float = 1000.0  # how fast the firmware empties its input buffer

    def reset(self) -> None:
        """Switch every fault off."""
        for f in fields(self):
            setattr(self, f.name, f.default)


def garble(frame: bytes) -> bytes:
    """Return ``frame`` with its middle byte flipped, so checksum or syntax no longer holds."""
    if not frame:
        return frame
    i = len(frame) // 2
    return frame[:i] + bytes([frame[i] ^ 0x5A]) + frame[i + 1 :]


def truncate(frame: bytes, keep: int | None = None) -> bytes:
    """Return the first ``keep`` bytes of ``frame`` (default or 0: half, at least one byte)."""
    if not keep:
        keep = max(1, len(frame) // 2)
    return frame[: min(keep, max(0, len(frame) - 1))] if len(frame) > 1 else frame


# -- the schedule format ---------------------------------------------------------------------

FaultKind = Literal[
    "hang_up",
    "silence",
    "deaf",
    "late_replies",
    "garble",
    "truncate",
    "split",
    "nak",
    "reset",
    "ignore_commands",
    "overheat",
    "rx_buffer",
]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]
INSTANT_KINDS = frozenset({"hang_up", "reset"})  # happen at once; duration_s is a down time


class FaultScheduleError(InputError):
    """A fault schedule file is malformed; says file, line, key and what to change."""


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class NoParams(_Params):
    """A fault kind without parameters."""


class LateParams(_Params):
    """``late_replies``: how long every reply is held."""

    delay_s: float = Field(0.5, gt=0, le=3600)


class TruncateParams(_Params):
    """``truncate``: how many bytes of every reply are sent (None: half of it)."""

    keep_bytes: int | None = Field(None, ge=1, le=65535)


class SplitParams(_Params):
    """``split``: reply pieces and the time between them."""

    piece_bytes: int = Field(1, ge=1, le=65535)
    gap_s: float = Field(0.002, ge=0, le=60)


class NakParams(_Params):
    """``nak``: the nak code sent, and whether the stop frame is still obeyed."""

    code: int = Field(2, ge=0, le=255)
    spare_stop: bool = True


class OverheatParams(_Params):
    """``overheat``: the surface temperature reported, C."""

    temp_c: float = Field(48.0, ge=-40, le=150)


class BufferParams(_Params):
    """``rx_buffer``: the input buffer's size and how fast the firmware empties it."""

    size: int = Field(16, ge=0, le=1 << 20)
    bytes_per_s: float = Field(1000.0, gt=0, le=1e9)


_PARAMS: dict[str, type[_Params]] = {
    "late_replies": LateParams,
    "truncate": TruncateParams,
    "split": SplitParams,
    "nak": NakParams,
    "overheat": OverheatParams,
    "rx_buffer": BufferParams,
}

# Names usable in ``after``, besides "start" and "<recorder kind>[:<detail>]".
TRIGGER_ALIASES = {
    "connected": "link:connected",
    "output_on": "power:on",
    "output_off": "power:off",
    "stop": "command:Stop",
}


class FaultEntry(BaseModel):
    """One timed fault: ``kind`` begins ``at_s`` after ``after`` and lasts ``duration_s``."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: FaultKind
    at_s: float = Field(0.0, ge=0, le=1e7, description="delay after the trigger, s")
    duration_s: float | None = Field(
        None, ge=0, le=1e7, description="how long (instant kinds: down time); none: to the end"
    )
    after: str = Field(
        "start",
        description='"start" (the schedule is applied), an alias (connected, output_on, '
        'output_off, stop) or a recorder event "kind" / "kind:detail" (e.g. "command:Stop")',
    )
    occurrence: int = Field(1, ge=1, le=1_000_000, description="count from the nth such event")
    params: dict[str, Any] = Field(default_factory=dict)
    _options: _Params = PrivateAttr(default_factory=NoParams)

    @field_validator("after")
    @classmethod
    def _known_trigger(cls, value: str) -> str:
        from hil.recorder import KINDS as EVENT_KINDS

        value = value.strip()
        if value == "start":
            return value
        value = TRIGGER_ALIASES.get(value, value)
        kind = value.partition(":")[0]
        if kind not in EVENT_KINDS:
            known = ", ".join(["start", *TRIGGER_ALIASES, *sorted(EVENT_KINDS)])
            raise ValueError(f"unknown event '{kind}' in 'after'; use one of: {known}")
        return value

    @model_validator(mode="after")
    def _check_params(self) -> FaultEntry:
        from pydantic import ValidationError

        model = _PARAMS.get(self.kind, NoParams)
        try:
            self._options = model.model_validate(self.params)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ("params", *first["loc"])
            if first["type"] == "extra_forbidden":
                known = ", ".join(model.model_fields) or "none"
                msg = f"'{first['loc'][-1]}' is not a parameter of '{self.kind}' (known: {known})"
            else:
                msg = f"params.{'.'.join(map(str, first['loc']))}: {first['msg']}"
            raise FieldError(msg, loc) from None
        return self

    @property
    def options(self) -> _Params:
        """The validated parameters of this kind (defaults filled in)."""
        return self._options


class FaultSchedule(BaseModel):
    """Timed fault entries (``[[fault]]`` tables in TOML, a ``fault`` list in JSON)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, populate_by_name=True
    )

    entries: tuple[FaultEntry, ...] = Field((), alias="fault", max_length=10_000)
    format: Literal[1] = Field(1, description="The schedule format; a file may say so.")

    @classmethod
    def of(cls, *entries: FaultEntry | dict[str, Any]) -> FaultSchedule:
        """Build a schedule in code: ``FaultSchedule.of({"kind": "silence", "at_s": 5})``."""
        return cls.model_validate({"fault": [_as_dict(e) for e in entries]})


def _as_dict(entry: FaultEntry | dict[str, Any]) -> dict[str, Any]:
    return entry.model_dump() if isinstance(entry, FaultEntry) else entry


def load_schedule(path: str | Path) -> FaultSchedule:
    """Load a fault schedule from a ``.toml`` or ``.json`` file; `FaultScheduleError` if bad."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise FaultScheduleError(
            "a fault schedule must be a .toml or .json file.",
            file=path,
            hint="Rename it, or write it as TOML ([[fault]] tables) or JSON.",
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FaultScheduleError(
            f"cannot read the file ({exc.strerror}).", file=path, hint="Check the path."
        ) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FaultScheduleError(
            f"this is not a UTF-8 text file (byte {exc.start}).",
            file=path,
            hint="Give a TOML or JSON text file.",
        ) from exc
    data: Any
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        else:
            data = json.loads(text, parse_constant=_no_constant)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POS.search(str(exc))
        raise FaultScheduleError(
            f"this is not valid TOML: {_TOML_POS.sub('', str(exc)).strip()}.",
            file=path,
            line=int(match.group(1)) if match else None,
            hint="Fix the syntax there.",
        ) from exc
    except json.JSONDecodeError as exc:
        raise FaultScheduleError(
            f"this is not valid JSON: {exc.msg}.",
            file=path,
            line=exc.lineno,
            hint="Fix the syntax there.",
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise FaultScheduleError(
            f"this file cannot be read as a schedule ({type(exc).__name__}: {exc}).",
            file=path,
            hint="Write numbers as finite decimals and keep tables shallow.",
        ) from exc
    if isinstance(data, list):
        data = {"fault": data}
    if not isinstance(data, dict):
        raise FaultScheduleError(
            "the file must hold a list of faults.",
            file=path,
            hint='Write [[fault]] tables (TOML) or {"fault": [...]} (JSON).',
        )
    try:
        return validate(FaultSchedule, data, text if suffix == ".toml" else "", path,
                        FaultScheduleError)
    except RecursionError as exc:
        raise FaultScheduleError(
            "the schedule is nested too deeply.", file=path, hint="Keep params flat."
        ) from exc


_TOML_POS = re.compile(r"\s*\(at line (\d+), column \d+\)")


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


# -- playing a schedule ------------------------------------------------------------------------

HangUp = Callable[[float | None], object]


@dataclass(slots=True)
class _Active:
    """A window kind's switches while its entries run: the values before, and who is on."""

    before: dict[str, Any]
    entries: list[FaultEntry] = field(default_factory=list)


class FaultPlayer:
    """Plays a `FaultSchedule` on one `SimulatedCushion` on its loop clock.

    Made by `apply_schedule`. Window kinds set ``cushion.faults`` switches while they run
    (overlapping entries of one kind: the latest one's params; the switches go back to what
    they were when the last one ends). Every begin and end is recorded as a ``"fault"`` event
    ``(kind, "begin" | "end")``.
    """

    def __init__(
        self,
        cushion: SimulatedCushion,
        schedule: FaultSchedule,
        *,
        hang_up: HangUp | None = None,
    ) -> None:
        self.cushion = cushion
        self.schedule = schedule
        self._hang_up = hang_up
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiting: list[tuple[FaultEntry, str, int]] = []  # (entry, trigger, seen so far)
        self._active: dict[str, _Active] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self.started_at = math.nan
        self.fired: list[tuple[float, FaultEntry]] = []  # (loop time it began, entry)

    @property
    def active(self) -> tuple[str, ...]:
        """Return the window kinds running now."""
        return tuple(kind for kind, act in self._active.items() if act.entries)

    @property
    def pending(self) -> int:
        """Return how many entries have not begun yet."""
        return len(self._waiting) + sum(1 for t in self._timers if not t.cancelled())

    def start(self) -> FaultPlayer:
        """Arm every entry on the running loop; "start" entries count from now."""
        if self._loop is not None:
            raise RuntimeError("this fault schedule is already playing")
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self.started_at = now
        for entry in self.schedule.entries:
            if entry.after == "start" and entry.at_s == 0:
                self._begin(entry)  # at once: a test may send the next frame without a yield
            elif entry.after == "start":
                self._at(now + entry.at_s, self._begin, entry)
            else:
                self._waiting.append((entry, entry.after, 0))
        if self._waiting:
            self._unsubscribe = self.cushion.recorder.subscribe(self._on_event)
        return self

    def cancel(self) -> None:
        """Stop playing: nothing more begins, running windows end now."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._waiting.clear()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for kind, act in list(self._active.items()):
            for entry in list(act.entries):
                self._end(entry)
            self._active.pop(kind, None)

    # -- timing --------------------------------------------------------------------------

    def _at(self, when: float, action: Callable[[FaultEntry], None], entry: FaultEntry) -> None:
        assert self._loop is not None
        box: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self._timers.discard(box[0])
            action(entry)

        box.append(self._loop.call_at(when, fire))
        self._timers.add(box[0])

    def _on_event(self, event: Event) -> None:
        if event.kind == "fault":
            return
        tag = f"{event.kind}:{_detail_tag(event)}"
        still: list[tuple[FaultEntry, str, int]] = []
        for entry, trigger, seen in self._waiting:
            if trigger in (event.kind, tag):
                seen += 1
                if seen >= entry.occurrence:
                    # Never act inside the recorder call: the firmware may be mid-command.
                    self._at(event.t + entry.at_s, self._begin, entry)
                    continue
            still.append((entry, trigger, seen))
        self._waiting = still
        if not still and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- begin and end ---------------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _begin(self, entry: FaultEntry) -> None:
        cushion, now = self.cushion, self._now()
        self.fired.append((now, entry))
        cushion.recorder.add(now, "fault", (entry.kind, "begin"))
        if entry.kind == "hang_up":
            self._do_hang_up(entry.duration_s)
            return
        if entry.kind == "reset":
            cushion.reboot(announce=not entry.duration_s)
            if entry.duration_s:
                # Booting: deaf for the boot time, as a window of its own; the boot frame
                # (where the profile has one) comes when it is over.
                boot = FaultEntry(kind="deaf", duration_s=entry.duration_s)
                cushion.recorder.add(now, "fault", ("deaf", "begin"))
                self._switch_on(boot)

                def booted(window: FaultEntry) -> None:
                    self._end(window)
                    cushion.announce_boot()

                self._at(now + entry.duration_s, booted, boot)
            return
        self._switch_on(entry)
        if entry.duration_s is not None:
            self._at(now + entry.duration_s, self._end, entry)

    def _switch_on(self, entry: FaultEntry) -> None:
        faults = self.cushion.faults
        values = _switches(entry)
        act = self._active.get(entry.kind)
        if act is None or not act.entries:
            act = _Active({name: getattr(faults, name) for name in values})
            self._active[entry.kind] = act
        act.entries.append(entry)
        for name, value in values.items():
            setattr(faults, name, value)

    def _end(self, entry: FaultEntry) -> None:
        act = self._active.get(entry.kind)
        if act is None or entry not in act.entries:
            return
        act.entries.remove(entry)
        faults = self.cushion.faults
        values = _switches(act.entries[-1]) if act.entries else act.before
        for name, value in values.items():
            setattr(faults, name, value)
        self.cushion.recorder.add(self._now(), "fault", (entry.kind, "end"))

    def _do_hang_up(self, down_s: float | None) -> None:
        if self._hang_up is None:
            self.cushion.hang_up(down_s)
            return
        result = self._hang_up(down_s)
        if inspect.isawaitable(result):
            assert self._loop is not None

            async def wait() -> None:
                await result

            task = self._loop.create_task(wait())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


def _switches(entry: FaultEntry) -> dict[str, Any]:
    """Return the `Faults` fields a window entry sets, with its values."""
    kind, opt = entry.kind, entry.options
    if kind == "silence":
        return {"silent": True}
    if kind == "deaf":
        return {"drop_rx": True}
    if kind == "garble":
        return {"garble_replies": True}
    if kind == "ignore_commands":
        return {"ignore_commands": True}
    if isinstance(opt, LateParams):
        return {"reply_delay_s": opt.delay_s}
    if isinstance(opt, TruncateParams):
        return {"truncate_replies": opt.keep_bytes or 0}
    if isinstance(opt, SplitParams):
        return {"split_replies": opt.piece_bytes, "split_gap_s": opt.gap_s}
    if isinstance(opt, NakParams):
        return {"nak_all": opt.code, "nak_spare_stop": opt.spare_stop}
    if isinstance(opt, OverheatParams):
        return {"overheat_c": opt.temp_c}
    if isinstance(opt, BufferParams):
        return {"rx_buffer": opt.size, "rx_drain_bytes_per_s": opt.bytes_per_s}
    raise AssertionError(f"not a window kind: {kind}")  # pragma: no cover


def _detail_tag(event: Event) -> str:
    """Return the text an ``after = "kind:detail"`` trigger compares with."""
    detail = event.detail
    if event.kind in ("command", "bad_frame"):
        return type(detail).__name__
    if event.kind == "refused" and isinstance(detail, tuple):
        return type(detail[0]).__name__
    if event.kind == "power":
        return "on" if detail else "off"
    if event.kind == "reply":
        return str(getattr(detail, "kind", detail))
    return str(detail)


def apply_schedule(
    cushion: SimulatedCushion, schedule: FaultSchedule, *, hang_up: HangUp | None = None
) -> FaultPlayer:
    """Start playing ``schedule`` on ``cushion`` now, on the running loop's clock.

    ``hang_up(down_s)`` replaces `SimulatedCushion.hang_up` for ``hang_up`` entries, for a link
    the cushion does not know (it may return an awaitable), e.g. a simulated BLE peripheral:
    ``hang_up=lambda down_s: peripheral.disconnect()``. Returns the player: ``cancel()`` it to
    end every fault early; ``fired`` lists what began when.
    """
    return FaultPlayer(cushion, schedule, hang_up=hang_up).start()

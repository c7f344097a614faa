"""The course, from the session journal: the next session's number, its sparing cap, the
notes a person should see before it, and the daily limits (docs/journal.md, "The course").

Line numbers are those of the reference article (../shared/design/DOMAIN.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ConfigDict, Field

from controller.errors import SessionRefused
from controller.limits import narrow

if TYPE_CHECKING:
    from collections.abc import Iterable

    from controller.journal import Journal, SessionRow
    from controller.limits import SafetyLimits
    from firmware_profiles import Profile
    from protocols import Program

logger = logging.getLogger(__name__)

COUNTS_AFTER_S: Final = 600.0
"""A session counts in the course when the cushion was on for at least this long (10 min,
half the article's shortest session, l. 270), whatever its outcome."""

COURSE_LENGTH: Final = (10, 12)
"""A course is about 10-12 procedures (l. 399); about 10 for prevention (l. 165)."""

DEFAULT_DAILY_DOSE_S: Final = 0.8**2 * 40 * 60.0
"""One day's vibration dose per zone: the longest session the envelope allows (40 min) at
the default overall cap (0.8) all the time, in seconds at full intensity: 1536 s."""


class CourseSettings(BaseModel):
    """The config file's `[course]` table: sparing sessions, course breaks, daily limits."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    sparing_sessions: int = Field(
        3, ge=0, le=12, description="first sessions of a course run under a rising, lower cap"
    )
    new_course_after_days: float = Field(
        28.0, ge=7, le=365, description="a break this long starts a new course"
    )
    min_hours_between: float = Field(
        12.0, ge=0, le=72, description="a note when the last session ended less long ago"
    )
    max_sessions_per_day: int = Field(
        2, ge=1, le=3, description="counted sessions on a cushion per calendar day"
    )
    daily_dose_s: float = Field(
        DEFAULT_DAILY_DOSE_S,
        gt=0,
        le=2 * DEFAULT_DAILY_DOSE_S,
        description="vibration dose per day, seconds at full intensity (busiest zone)",
    )


DEFAULT_COURSE: Final = CourseSettings()


def counts(row: SessionRow) -> bool:
    """True when a session counts in the course (the cushion was on for 10 minutes or more)."""
    return row.at_intensity_s >= COUNTS_AFTER_S


def session_dose(row: SessionRow) -> float:
    """A session's dose: its busiest zone's (seconds at full intensity)."""
    return max(row.dose.values(), default=0.0)


def numbers(
    rows: Iterable[SessionRow], settings: CourseSettings = DEFAULT_COURSE
) -> dict[int, int]:
    """Return each counted session's number in its course (session id -> 1, 2, ...).

    Simulator sessions and sessions on a cushion are two courses apart; a break of
    `new_course_after_days` between two counted sessions starts a new course.
    """
    gap = timedelta(days=settings.new_course_after_days)
    last: dict[bool, tuple[datetime, int]] = {}
    out: dict[int, int] = {}
    for row in sorted(rows, key=lambda r: (r.started_at, r.id)):
        if not counts(row):
            continue
        before = last.get(row.simulated)
        n = 1 if before is None or row.started_at - before[0] >= gap else before[1] + 1
        last[row.simulated] = (row.started_at, n)
        out[row.id] = n
    return out


def sparing_cap(number: int, limits: SafetyLimits, settings: CourseSettings) -> float | None:
    """Return the cap of session `number` of a course, or None past the sparing sessions.

    Session 1 runs at the sparing cap; each sparing session after it is a step closer to
    the overall cap, which session `sparing_sessions + 1` reaches: with the defaults
    50, 60, 70 %, then 80 %. Never above the user's own overall cap.
    """
    n = settings.sparing_sessions
    if number > n:
        return None
    top = limits.max_intensity
    low = min(limits.sparing_max_intensity, top)
    return min(top, round(low + (top - low) * (number - 1) / n, 4))


@dataclass(frozen=True, slots=True)
class Course:
    """What the journal says about the next session: its place in the course and its cap."""

    number: int
    simulated: bool
    sparing: bool
    cap: float | None
    limits: SafetyLimits
    notes: tuple[str, ...] = ()
    today_sessions: int = 0
    today_dose_s: float = 0.0
    planned_dose_s: float | None = None
    settings: CourseSettings = field(default=DEFAULT_COURSE)


def _ended(row: SessionRow) -> datetime:
    return row.ended_at or row.started_at


def _ago(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _tomorrow(now: datetime) -> str:
    day = (now + timedelta(days=1)).strftime("%a %d %b")
    return f"tomorrow ({day}) from 00:00"


def start_of_day(now: datetime) -> datetime:
    """Return local midnight of `now`'s day (an aware datetime): where "today" begins."""
    local = now.astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def planned_dose(program: Program, profile: Profile, limits: SafetyLimits) -> float:
    """Return the dose of the busiest zone the plan would give (an upper bound of the wire's:
    the cushion rounds levels down and its own ramp only lowers them)."""
    from controller.runner import plan

    timeline = plan(program, profile, limits)
    ends = [*timeline.times[1:], timeline.duration_s]
    dose = [0.0] * len(timeline.zones)
    for t0, t1, sp in zip(timeline.times, ends, timeline.setpoints, strict=True):
        for z, x in enumerate(sp.levels):
            if x > 0:
                dose[z] += x * x * (t1 - t0)
    return max(dose, default=0.0)


def prepare(
    journal: Journal,
    limits: SafetyLimits,
    program: Program,
    profile: Profile,
    *,
    simulated: bool,
    settings: CourseSettings = DEFAULT_COURSE,
    now: datetime | None = None,
) -> Course:
    """Decide the next session from the journal: its number, cap (limits only narrowed) and
    notes; SessionRefused when a daily limit (sessions on a cushion, dose) is reached.

    Simulator sessions keep a course of their own and are never refused: the limits guard a
    body, and the simulator has none.
    """
    now = (now or datetime.now()).astimezone()
    rows = [r for r in journal.sessions() if r.simulated == simulated]
    numbered = numbers(rows, settings)
    counted = [r for r in rows if r.id in numbered]
    last = counted[-1] if counted else None
    gap = timedelta(days=settings.new_course_after_days)
    fresh = last is None or now - last.started_at >= gap
    number = 1 if fresh or last is None else numbered[last.id] + 1
    cap = sparing_cap(number, limits, settings)
    narrowed = (
        narrow(limits, {"max_intensity": cap})
        if cap is not None and cap < limits.max_intensity
        else limits
    )
    midnight = start_of_day(now)
    today = [r for r in rows if r.started_at >= midnight]
    today_sessions = sum(1 for r in today if r.id in numbered)
    today_dose = sum(session_dose(r) for r in today)
    notes = [_course_note(number, simulated)]
    if cap is not None:
        notes.append(_sparing_note(number, cap, limits, settings))
    if number >= COURSE_LENGTH[0]:
        notes.append(_length_note(number, settings))
    if last is not None and not fresh:
        since = now - _ended(last)
        if since < timedelta(hours=settings.min_hours_between):
            notes.append(
                f"Your last session ended {_ago(since)} ago. The article does not say how "
                "often to have one; Cushion assumes about one a day in a course, so a longer "
                "break may suit you better."
            )
    planned: float | None = None
    if not simulated:
        if today_sessions >= settings.max_sessions_per_day:
            raise SessionRefused(
                f"you have had {today_sessions} session(s) of 10 minutes or more today, the "
                f"daily limit of {settings.max_sessions_per_day}. The next one is allowed "
                f"{_tomorrow(now)}.",
                key="course.max_sessions_per_day",
                hint="The limit is a rule of this product, not a medical threshold; the config "
                "file's course table (docs/journal.md) may set it from 1 to 3.",
            )
        planned = _planned(program, profile, narrowed, today_dose, settings.daily_dose_s)
        if planned is not None and today_dose + planned > settings.daily_dose_s:
            raise _dose_refusal(today_dose, planned, settings.daily_dose_s, now)
    return Course(
        number=number,
        simulated=simulated,
        sparing=cap is not None or program.sparing or limits.sparing,
        cap=cap,
        limits=narrowed,
        notes=tuple(notes),
        today_sessions=today_sessions,
        today_dose_s=today_dose,
        planned_dose_s=planned,
        settings=settings,
    )


def _planned(
    program: Program, profile: Profile, limits: SafetyLimits, today: float, budget: float
) -> float | None:
    # The session cannot give more than cap squared times its length; plan only when that
    # bound would not fit, since planning takes a tenth of a second or more.
    length = min(program.duration_s, limits.session_max_s)
    if today + limits.max_intensity**2 * length <= budget:
        return None
    return planned_dose(program, profile, limits)


def _dose_refusal(today: float, planned: float, budget: float, now: datetime) -> SessionRefused:
    hint = (
        "The budget is a rule of this product, not a medical threshold (docs/journal.md); "
        "the config file's course table may set daily_dose_s up to "
        f"{2 * DEFAULT_DAILY_DOSE_S:.0f}."
    )
    if planned > budget:
        return SessionRefused(
            f"this session alone would give a vibration dose of about {planned:.0f} s, more "
            f"than the daily budget of {budget:.0f} s (seconds at full intensity on the "
            "busiest zone).",
            key="course.daily_dose_s",
            hint="Lower --max-intensity or choose a shorter or gentler program. " + hint,
        )
    return SessionRefused(
        f"today's vibration dose is {today:.0f} s and this session would add about "
        f"{planned:.0f} s, past the daily budget of {budget:.0f} s (seconds at full "
        f"intensity on the busiest zone). The next session is allowed {_tomorrow(now)}.",
        key="course.daily_dose_s",
        hint=hint,
    )


def _course_note(number: int, simulated: bool) -> str:
    lo, hi = COURSE_LENGTH
    if simulated:
        return (
            f"Simulator session {number} of a course of about {lo}-{hi}: the simulator keeps "
            "a course of its own, apart from your sessions on a cushion."
        )
    return f"Session {number} of a course of about {lo}-{hi} (the article, line 399)."


def _sparing_note(
    number: int, cap: float, limits: SafetyLimits, settings: CourseSettings
) -> str:
    n = settings.sparing_sessions
    top = limits.max_intensity
    if cap >= top:
        return (
            f"Sparing session {number} of {n}: your own cap of {top:.0%} is already at or "
            "below the sparing cap."
        )
    return (
        f"Sparing session {number} of {n}: the strongest setting is held at {cap:.0%} today "
        f"and rises session by session to your cap of {top:.0%} from session {n + 1} (the "
        "article: first sessions in a sparing mode, line 136; the pain of the first 3-4 "
        "sessions should fade, lines 215 and 371)."
    )


def _length_note(number: int, settings: CourseSettings) -> str:
    lo, hi = COURSE_LENGTH
    days = settings.new_course_after_days
    if number <= hi:
        return (
            f"A course is about {lo}-{hi} sessions (line 399; about {lo} for prevention, line "
            f"165): this is session {number}."
        )
    return (
        f"This course has had {number - 1} sessions, more than the article's {lo}-{hi} "
        f"(line 399), which repeats a course about every 2 months for chronic conditions. A "
        f"break of {days:g} days starts a new course here, with sparing sessions again. A "
        "doctor decides for a named condition."
    )



def without_journal(limits: SafetyLimits, program: Program, settings: CourseSettings) -> Course:
    """The course of a session whose journal cannot be opened: a first, sparing session
    (the lowest cap is the safe side of not knowing); the daily limits cannot be checked."""
    cap = sparing_cap(1, limits, settings)
    narrowed = (
        narrow(limits, {"max_intensity": cap})
        if cap is not None and cap < limits.max_intensity
        else limits
    )
    note = "Without its journal this session runs as a first, sparing session"
    note += f" (held at {cap:.0%})." if cap is not None else "."
    return Course(
        number=1,
        simulated=False,
        sparing=cap is not None or program.sparing or limits.sparing,
        cap=cap,
        limits=narrowed,
        notes=(note,),
        settings=settings,
    )


def settings_in_use() -> CourseSettings:
    """Return the `[course]` table of the config file the running command reads (its
    --config option, else the default file)."""
    import click

    from controller.config import load_config

    # The command has loaded this file already; reading it again keeps _journaled's
    # signature as it is (one caller per transport).
    context = click.get_current_context(silent=True)
    path = context.params.get("config") if context is not None else None
    return load_config(path)[0].course

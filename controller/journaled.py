"""One path for every session a person starts (terminal or MQTT): course rules, then journal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from controller.errors import DeviceError
from controller.session import EXIT_DEVICE, EXIT_INTERRUPTED

if TYPE_CHECKING:
    from controller.events import Emit
    from controller.limits import SafetyLimits
    from controller.runner import RunOptions
    from controller.session import SessionResult
    from controller.transports.base import Transport
    from firmware_profiles import Profile
    from protocols import Program


class Say(Protocol):
    """Where a run's notes and warnings go (stderr for the CLI, the log for a node)."""

    def __call__(self, text: str, *, warning: bool = False) -> None:
        """Tell the person `text`; `warning` marks it as one."""


async def run_journaled(
    prog: Program,
    prof: Profile,
    limits: SafetyLimits,
    options: RunOptions,
    emit: Emit,
    *,
    say: Say,
    transport: Transport | None = None,
    screening_skipped: bool = False,
) -> SessionResult:
    """Run a program with every event also kept in the session journal (see docs/journal.md).

    The course's daily limits refuse (SessionRefused) before the device opens.
    """
    from controller.course import prepare, settings_in_use, without_journal
    from controller.events import Isolated
    from controller.journal import Journal, JournalError, is_simulated
    from controller.runner import run_program

    settings = settings_in_use()
    try:
        journal = Journal.open()
    except JournalError as exc:
        # The journal keeps the history; without it the session runs as a first one.
        say(f"{exc.describe()} This session is not journaled.", warning=True)
        course = without_journal(limits, prog, settings)
        for note in course.notes:
            say(note)
        return await run_program(
            prog, prof, course.limits, options, emit=emit, transport=transport
        )
    try:
        # Before the device opens: a refused session (a daily limit) never touches it.
        endpoint = str(options.endpoint)
        course = prepare(journal, limits, prog, prof, simulated=is_simulated(endpoint),
                         settings=settings)
        for note in course.notes:  # ahead of the session: a --json stdout stays events
            say(note)
        limits = course.limits
        recorder = journal.start_session(
            program=prog.name,
            profile=prof.name,
            endpoint=endpoint,
            screening_skipped=screening_skipped,
            sparing=course.sparing,
        )
        try:
            result = await run_program(
                prog, prof, limits, options, emit=Isolated(emit, recorder), transport=transport
            )
        except BaseException as exc:
            outcome = "device-error" if isinstance(exc, DeviceError) else "interrupted"
            code = EXIT_DEVICE if isinstance(exc, DeviceError) else EXIT_INTERRUPTED
            recorder.end(outcome, code)
            raise
        recorder.end(result.outcome, result.exit_code)
        if recorder.error is not None:
            say(f"the journal stopped recording: {recorder.error}", warning=True)
        return result
    finally:
        journal.close()

"""The screening: the contraindication checklist asked before sessions, and its verdicts.

Before the first session, again every 90 days, or when a program lists an item not yet
asked, the user answers one yes/no question per item of `protocols.contraindications`
(the article's lists plus public device guidance). The answers are kept in the config file's
`[screening]` table. A "yes" to an item a program lists refuses that program; a "yes" to
reduced sensation keeps heat off; every session started in a terminal also asks about acute
pain, and a "yes" refuses that day's sessions. See docs/config.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from controller.config import (
    Config,
    ScreeningSection,
    default_config_path,
    load_config,
    update_config,
)
from controller.errors import SessionRefused
from controller.limits import narrow
from protocols.contraindications import BY_KEY, CHECKLIST, PAIN, Contra

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from controller.limits import SafetyLimits
    from protocols import Program

log = logging.getLogger(__name__)

REASK_DAYS: Final = 90
GetKey = Callable[[], str]

INTRO: Final = (
    "Before massage: yes/no questions from the contraindications that the reference article "
    "lists, and a few from public guidance for massage devices. This is not medical advice: "
    "for the conditions named, a doctor decides whether massage suits you. A program that "
    "lists a condition you answer yes to will not start. Your answers are kept in {path} and "
    "asked again after {days} days; change them any time with 'cushion screening'. "
    "The cushion's power switch is the emergency stop."
)


@dataclass(frozen=True)
class Screening:
    """The answers in force and the config file that keeps them."""

    section: ScreeningSection
    path: Path


@dataclass(frozen=True)
class Gate:
    """What the screening allows: the limits to run under, and whether it was skipped."""

    limits: SafetyLimits
    skipped: bool
    notes: list[str] = field(default_factory=list)


def today() -> dt.date:
    """Return today's local date (the day a pain answer holds for)."""
    return dt.date.today()


def screening_for(config_path: Path | None, cfg: Config) -> Screening:
    """Return the screening in force for a run with `--config config_path` (None: the user's).

    The answers belong to the person, so they live in the per-user config file, unless the
    `--config` file has a `[screening]` table of its own.
    """
    if config_path is not None and "screening" in cfg.model_fields_set:
        return Screening(cfg.screening, config_path)
    if config_path is None:
        return Screening(cfg.screening, default_config_path())
    user, _ = load_config(None)
    return Screening(user.screening, default_config_path())


def due_on(section: ScreeningSection) -> dt.date | None:
    """Return the day the checklist is asked again (None: it was never answered)."""
    if section.answered_on is None:
        return None
    return section.answered_on + dt.timedelta(days=REASK_DAYS)


def to_ask(section: ScreeningSection, keys: tuple[str, ...], on: dt.date) -> tuple[Contra, ...]:
    """Return the items to ask before a program listing `keys` runs on day `on`."""
    due = due_on(section)
    if due is None or on >= due:
        return CHECKLIST
    asked = set(section.answers)
    wanted = dict.fromkeys(k for k in keys if k not in asked and BY_KEY[k] in CHECKLIST)
    return tuple(BY_KEY[k] for k in wanted)


def refused_items(section: ScreeningSection, program: Program) -> list[Contra]:
    """Return the items the program lists that were answered yes and refuse it."""
    keys = dict.fromkeys(program.screening_keys)
    return [
        BY_KEY[k] for k in keys if section.answers.get(k) and BY_KEY[k].effect == "refuse"
    ]


def no_heat(section: ScreeningSection) -> bool:
    """Return whether heat stays off (a yes to reduced sensation), whatever the program."""
    return bool(section.answers.get("reduced_sensation"))


def no_heat_note() -> str:
    """Say why heat stays off after a yes to reduced sensation (a sentence, no full stop)."""
    return ("heat stays off: the screening answered yes to reduced sensation "
            f"({BY_KEY['reduced_sensation'].reason})")


def pain_refusal() -> SessionRefused:
    """Return the refusal for a day with pronounced or acute pain."""
    return SessionRefused(
        "no session today: the answer to 'pronounced or acute pain right now?' was yes. "
        f"The article: {PAIN.reason} {PAIN.cite()}.",
        hint="Sessions can start again tomorrow. If the answer was a slip of the key: "
        "cushion config set screening.pain_on none",
    )


def program_refusal(program: Program, items: list[Contra]) -> SessionRefused:
    """Return the refusal of a program that lists conditions answered yes."""
    why = "; ".join(f"{c.condition}: {c.reason} {c.cite()}" for c in items)
    return SessionRefused(
        f"'{program.title}' ({program.name}) does not start: it lists a contraindication your "
        f"screening answered yes to: {why}.",
        hint="For the conditions named, a doctor decides whether massage suits you. If an "
        "answer has changed, run 'cushion screening' in a terminal.",
    )


def not_answered(screening: Screening, items: tuple[Contra, ...]) -> SessionRefused:
    """Return the refusal for a run without a terminal whose screening is not answered."""
    what = (
        "the screening has not been answered"
        if screening.section.answered_on is None
        else f"the screening is due again ({REASK_DAYS} days since {screening.section.answered_on})"
        if len(items) == len(CHECKLIST)
        else "the program lists screening questions not answered yet: "
        + ", ".join(c.key for c in items)
    )
    return SessionRefused(
        f"{what}, and there is no terminal to ask in.",
        file=screening.path,
        hint="Answer it with 'cushion screening' in a terminal, or pass --yes for an unattended "
        "rig (the journal records that the questions were skipped).",
    )


class Asker:
    """Asks the questions on a terminal, one key per answer."""

    def __init__(self, console: Console, getkey: GetKey) -> None:
        self.console = console
        self.getkey = getkey

    def _key(self, allowed: str) -> str:
        while True:
            try:
                key = self.getkey().lower()
            except EOFError:
                raise SessionRefused(
                    "the screening was not finished (end of input); nothing was saved.",
                    hint="Run 'cushion screening' to answer it.",
                ) from None
            if not allowed or key in allowed:
                return key

    def intro(self, path: Path) -> None:
        """Say what the questions are for, once."""
        self.console.print(INTRO.format(path=path, days=REASK_DAYS),
                           soft_wrap=not self.console.is_terminal)

    def checklist(self, items: tuple[Contra, ...]) -> dict[str, bool]:
        """Ask each item (y or n, no default) and return key -> yes."""
        answers: dict[str, bool] = {}
        width = len(str(len(items)))
        for n, item in enumerate(items, start=1):
            self.console.print(f"{n:>{width}}/{len(items)} {item.question} [y/n] ", end="",
                               soft_wrap=not self.console.is_terminal, markup=False)
            answers[item.key] = self._key("yn") == "y"
            self.console.print("yes" if answers[item.key] else "no")
        return answers

    def pain(self) -> bool:
        """Ask the one question of every session start (y, or any other key for no)."""
        self.console.print(f"{PAIN.question} [y/N] ", end="", markup=False)
        yes = self._key("") == "y"
        self.console.print("yes" if yes else "no")
        return yes


def save_answers(screening: Screening, answers: dict[str, bool], *, whole: bool,
                 on: dt.date) -> Screening:
    """Keep answers in the config file (with the day, when the whole checklist was asked)."""
    changes: dict[tuple[str, ...], Any] = {
        ("screening", "answers", key): yes for key, yes in answers.items()
    }
    if whole:
        changes[("screening", "answered_on")] = on
    config = update_config(screening.path, changes)
    return Screening(config.screening, screening.path)


def gate(
    program: Program,
    screening: Screening,
    limits: SafetyLimits,
    *,
    skip: bool,
    asker: Asker | None,
) -> Gate:
    """Ask what is due and decide: the limits to run under, or SessionRefused saying why.

    `skip` (--yes, or `unattended = true`) asks nothing; answers already kept still refuse or
    keep heat off. `asker` None means no terminal: nothing can be asked, so a screening that
    is due refuses the run.
    """
    on = today()
    section = screening.section
    if section.pain_on == on:
        raise pain_refusal()
    skip = skip or section.unattended
    if not skip:
        due = to_ask(section, program.screening_keys, on)
        if due and asker is None:
            raise not_answered(screening, due)
        if asker is not None:
            if due:
                asker.intro(screening.path)
                answers = asker.checklist(due)
                screening = save_answers(screening, answers, whole=due == CHECKLIST, on=on)
                section = screening.section
                asker.console.print(f"answers saved to {screening.path}")
            if asker.pain():
                update_config(screening.path, {("screening", "pain_on"): on})
                log.info("pain today: sessions refused until tomorrow")
                raise pain_refusal()
    items = refused_items(section, program)
    if items:
        raise program_refusal(program, items)
    notes = []
    if no_heat(section) and limits.heat_max > 0:
        limits = narrow(limits, {"heat_max": 0.0})
        notes.append(no_heat_note())
    return Gate(limits, skip, notes)

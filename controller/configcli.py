"""`cushion config show|set` and `cushion screening`: the user's settings and answers."""

from __future__ import annotations

import json
import math
import sys
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from collections.abc import Callable

    from controller.config import Config
    from controller.limits import SafetyLimits
    from controller.screening import Screening

F = TypeVar("F", bound="Callable[..., Any]")
NONE_WORDS = ("none", "")
YES_WORDS = ("yes", "y", "true")
NO_WORDS = ("no", "n", "false")

_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $CUSHION_CONFIG, else the per-user file).",
)


def _friendly(func: F) -> F:
    """The CLI's error handling (one paragraph, exit 2), looked up when the command runs."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from controller.cli import friendly

        return friendly(func)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _load(config_path: Path | None) -> tuple[Path, Config, SafetyLimits]:
    from controller.config import default_config_path, load_config

    cfg, limits = load_config(config_path)
    return config_path or default_config_path(), cfg, limits


# -- cushion screening -------------------------------------------------------------------------


def _status(screening: Screening) -> dict[str, Any]:
    from controller.screening import due_on, today
    from protocols.contraindications import CHECKLIST

    section = screening.section
    due = due_on(section)
    return {
        "file": str(screening.path),
        "answered_on": section.answered_on.isoformat() if section.answered_on else None,
        "due_on": due.isoformat() if due else None,
        "due": due is None or today() >= due,
        "unattended": section.unattended,
        "pain_today": section.pain_on == today(),
        "yes": [c.key for c in CHECKLIST if section.answers.get(c.key)],
        "unanswered": [c.key for c in CHECKLIST if c.key not in section.answers],
    }


def _status_line(status: dict[str, Any]) -> str:
    if status["answered_on"] is None:
        return "not answered yet: 'cushion screening' asks it (or the first 'cushion run')"
    text = f"answered on {status['answered_on']}, asked again from {status['due_on']}"
    if status["due"]:
        text += " (due now)"
    if status["yes"]:
        text += f"; yes to: {', '.join(status['yes'])}"
    if status["unanswered"]:
        text += f"; not asked yet: {', '.join(status['unanswered'])}"
    if status["unattended"]:
        text += "; unattended: questions skipped"
    if status["pain_today"]:
        text += "; pain today: no sessions today"
    return text


@click.command("screening")
@click.option("--show", is_flag=True, help="Show the questions and the answers kept.")
@click.option("--json", "as_json", is_flag=True, help="With --show: print JSON.")
@_config_option
@_friendly
def screening_command(show: bool, as_json: bool, config_path: Path | None) -> None:
    """Answer the contraindication questions again (or --show them and the answers)."""
    from controller.config import load_config
    from controller.errors import UsageError
    from controller.screening import Asker, save_answers, screening_for, today
    from protocols.contraindications import CHECKLIST, PAIN

    cfg, _ = load_config(config_path)
    screening = screening_for(config_path, cfg)
    if show or as_json:
        answers = screening.section.answers
        rows = [
            {"key": c.key, "question": c.question, "condition": c.condition,
             "reason": c.reason, "lines": list(c.lines), "source": c.source,
             "answer": answers.get(c.key)}
            for c in (*CHECKLIST, PAIN)
        ]
        status = _status(screening)
        if as_json:
            click.echo(json.dumps({**status, "items": rows}, indent=2))
            return
        out = _out()
        out.print(f"screening ({screening.path}): {_status_line(status)}", soft_wrap=True)
        table = Table("key", "question", "answer", "source", box=None)
        for row, item in zip(rows, (*CHECKLIST, PAIN), strict=True):
            answer = ("asked at each session" if item is PAIN
                      else "-" if row["answer"] is None else "yes" if row["answer"] else "no")
            table.add_row(item.key, item.question, answer, item.cite().strip("()"))
        out.print(table)
        return
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError(
            "the screening asks its questions in a terminal, and this is not one.",
            hint="Run 'cushion screening' in a terminal; 'cushion screening --show' prints the "
            "answers kept.",
        )
    from controller.keys import answering

    with answering(sys.stdin.fileno()) as key:
        asker = Asker(_err(), key)
        asker.intro(screening.path)
        answers = asker.checklist(CHECKLIST)
    screening = save_answers(screening, answers, whole=True, on=today())
    _err().print(f"answers saved to {screening.path}: {_status_line(_status(screening))}",
                 soft_wrap=True)


# -- cushion config ----------------------------------------------------------------------------


@click.group("config")
def config_group() -> None:
    """Show the settings in force, or change one (limits can only be lowered)."""


def _limit_rows(limits: SafetyLimits) -> list[dict[str, Any]]:
    from controller.limits import DEFAULT_LIMITS, SafetyLimits

    return [
        {"key": name, "value": getattr(limits, name), "default": getattr(DEFAULT_LIMITS, name),
         "meaning": info.description or ""}
        for name, info in SafetyLimits.model_fields.items()
    ]


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_config_option
@_friendly
def config_show(as_json: bool, config_path: Path | None) -> None:
    """Show the effective settings, where files live, and the screening's status."""
    from controller.journal import default_path as journal_path
    from controller.screening import screening_for
    from protocols.userdirs import user_dir

    path, cfg, limits = _load(config_path)
    screening = screening_for(config_path, cfg)
    # Only known settings are shown, by name: nothing from the file is echoed verbatim.
    data: dict[str, Any] = {
        "config_file": str(path),
        "config_exists": path.exists(),
        "journal": str(journal_path()),
        "user_programs": str(user_dir("programs")),
        "user_profiles": str(user_dir("profiles")),
        "defaults": cfg.defaults.model_dump(),
        "limits": {row["key"]: row["value"] for row in _limit_rows(limits)},
        "allow_raise": cfg.limits.allow_raise,
        "devices": {address: d.model_dump() for address, d in cfg.device.items()},
        "screening": _status(screening),
        "course": cfg.course.model_dump(),
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    out = _out()
    out.print(f"config file: {path}" + ("" if path.exists() else " (none yet: all defaults)"))
    out.print(f"journal: {data['journal']}")
    out.print(f"your programs: {data['user_programs']}")
    out.print(f"your profiles: {data['user_profiles']}")
    out.print(f"default profile: {cfg.defaults.profile or '- (lp4-ascii on the simulator)'}")
    out.print(f"default port: {cfg.defaults.port or '- (the simulator)'}")
    table = Table("limit", "in force", "default", "meaning", box=None)
    for row in _limit_rows(limits):
        mark = "" if row["value"] == row["default"] else " *"
        table.add_row(row["key"], f"{row['value']:g}{mark}" if not isinstance(row["value"], bool)
                      else f"{row['value']}{mark}", f"{row['default']:g}"
                      if not isinstance(row["default"], bool) else str(row["default"]),
                      row["meaning"])
    out.print(table)
    for address, device in cfg.device.items():
        out.print(f'device "{address}": {device.model_dump(exclude_defaults=True)}')
    out.print(f"screening: {_status_line(data['screening'])}", soft_wrap=True)
    out.print("course: " + ", ".join(f"{k} = {v:g}" for k, v in data["course"].items()))


def _settable() -> list[str]:
    from controller.course import CourseSettings
    from controller.limits import SafetyLimits
    from protocols.contraindications import CHECKLIST

    return [
        *(f"limits.{name}" for name in SafetyLimits.model_fields),
        "defaults.profile", "defaults.port", "screening.unattended", "screening.pain_on",
        "screening.answered_on", *(f"screening.{c.key}" for c in CHECKLIST),
        *(f"course.{name}" for name in CourseSettings.model_fields),
    ]


def _yes_no(key: str, value: str) -> bool:
    from controller.errors import ConfigError

    word = value.strip().lower()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    raise ConfigError(f"'{value}' is not yes or no.", key=key, hint=f"Write: {key} yes, or no.")


def _limit_change(key: str, name: str, value: str, limits: SafetyLimits) -> Any:
    """Return the new value of a limit, refusing anything that is not lower (safer)."""
    from controller.errors import ConfigError
    from controller.limits import DEFAULT_LIMITS, LimitError, narrow

    if value.strip().lower() in NONE_WORDS:
        new: Any = getattr(DEFAULT_LIMITS, name)  # removing the line means the default
    elif name == "sparing":
        new = _yes_no(key, value)
    else:
        try:
            new = float(value.strip().rstrip("%")) / (100 if value.strip().endswith("%") else 1)
        except ValueError:
            raise ConfigError(f"'{value}' is not a number.", key=key,
                              hint="Give a number, e.g. 0.5 (intensities are fractions 0..1, "
                              "or write 50%).") from None
        if not math.isfinite(new):
            raise ConfigError(f"'{value}' is not a finite number.", key=key,
                              hint="Give an ordinary number.")
    try:
        narrow(limits, {name: new})
    except LimitError as exc:
        hint = exc.hint or ""
        if "allow_raise" in hint:
            hint = ("'cushion config set' only lowers limits (now "
                    f"{getattr(limits, name)!r}); to raise one, edit the file by hand with "
                    "allow_raise = true under [limits].")
        raise ConfigError(exc.message, key=key, hint=hint or None) from exc
    return None if value.strip().lower() in NONE_WORDS else new


def _course_change(key: str, name: str, value: str, cfg: Config) -> float | int | None:
    """Return a `[course]` value checked against the table's own bounds (None: the default)."""
    from pydantic import ValidationError

    from controller.course import CourseSettings
    from controller.errors import ConfigError

    if value.strip().lower() in NONE_WORDS:
        return None
    field = CourseSettings.model_fields[name]
    try:
        number: float | int = int(value) if field.annotation is int else float(value)
        CourseSettings.model_validate({**cfg.course.model_dump(), name: number})
    except (ValueError, ValidationError) as exc:
        why = (exc.errors()[0]["msg"] if isinstance(exc, ValidationError)
               else f"'{value}' is not a number of the kind this setting takes")
        raise ConfigError(f"{why}.", key=key,
                          hint=f"{name}: {field.description}; default {field.default:g}.") from None
    return number


def _change(key: str, value: str, cfg: Config, limits: SafetyLimits) -> tuple[tuple[str, ...], Any]:
    """Return the key path and TOML value `config set KEY VALUE` writes, or ConfigError."""
    from controller.course import CourseSettings
    from controller.errors import ConfigError
    from controller.limits import SafetyLimits
    from protocols.contraindications import BY_KEY, CHECKLIST

    parts = tuple(key.split("."))
    none = value.strip().lower() in NONE_WORDS
    if len(parts) == 2 and parts[0] == "limits":
        if parts[1] == "allow_raise":
            raise ConfigError("'cushion config set' never loosens limits.", key=key,
                              hint="Edit the config file by hand if you really mean it.")
        if parts[1] in SafetyLimits.model_fields:
            return parts, _limit_change(key, parts[1], value, limits)
    if parts == ("defaults", "profile"):
        if not none:
            from firmware_profiles import load_profile

            load_profile(value)
        return parts, None if none else value
    if parts == ("defaults", "port"):
        if not none:
            from controller.transports.base import parse_endpoint

            parse_endpoint(value)
        return parts, None if none else value
    if parts[:1] == ("screening",) and len(parts) in (2, 3):
        name = parts[-1]
        if parts == ("screening", "unattended"):
            return parts, None if none else _yes_no(key, value)
        if parts in (("screening", "pain_on"), ("screening", "answered_on")):
            if none:
                return parts, None
            raise ConfigError(f"{key} can only be cleared.", key=key,
                              hint=f"Write: cushion config set {key} none (the questions are "
                              "then asked again).")
        if (len(parts) == 2 or parts[1] == "answers") and name in BY_KEY and BY_KEY[
            name
        ] in CHECKLIST:
            return ("screening", "answers", name), None if none else _yes_no(key, value)
    if len(parts) == 2 and parts[0] == "course" and parts[1] in CourseSettings.model_fields:
        return parts, _course_change(key, parts[1], value, cfg)
    raise ConfigError(f"there is no setting '{key}' that 'cushion config set' changes.", key=key,
                      hint=f"Settable: {', '.join(_settable())}.")


@config_group.command("set")
@click.argument("key")
@click.argument("value")
@_config_option
@_friendly
def config_set(key: str, value: str, config_path: Path | None) -> None:
    """Set one setting: a limit (lower only), the default profile or port, a screening answer.

    VALUE 'none' removes the setting (for a limit: back to its default, if that is not higher).
    """
    from controller.config import update_config

    path, cfg, limits = _load(config_path)
    if key.startswith("screening."):
        from controller.screening import screening_for

        path = screening_for(config_path, cfg).path
    keys, new = _change(key, value, cfg, limits)
    update_config(path, {keys: new})
    shown = ("removed" if new is None else f"= {'yes' if new else 'no'}"
             if isinstance(new, bool) else f"= {new}")
    _err().print(f"{'.'.join(keys)} {shown} in {path}", soft_wrap=True, markup=False)

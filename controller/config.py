"""The user config file (TOML): default profile and port, limits narrowed below defaults, and
the screening's answers."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Final

from platformdirs import user_config_path
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from controller.course import CourseSettings
from controller.errors import ConfigError
from controller.limits import DEFAULT_LIMITS, LimitError, SafetyLimits, narrow
from protocols.contraindications import CHECKLIST
from protocols.tomlsource import FieldError, locate, read_toml, validate

log = logging.getLogger(__name__)
ENV_VAR: Final = "CUSHION_CONFIG"


class LimitsSection(BaseModel):
    """The `[limits]` table: any SafetyLimits field, plus `allow_raise` to loosen one."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    allow_raise: bool = False


class DefaultsSection(BaseModel):
    """The `[defaults]` table: what `cushion run` uses when an option is not given."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    profile: str | None = None
    port: str | None = None


class DeviceSection(BaseModel):
    """A `[device."ADDRESS"]` table: settings that follow one cushion across sessions."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    profile: str | None = None
    max_intensity: float | None = Field(
        None, description="lower the overall cap for this cushion: 0..1 of its range"
    )
    sparing: bool = False

    @field_validator("max_intensity")
    @classmethod
    def _fraction(cls, value: float | None) -> float | None:
        if value is not None and not 0 <= value <= 1:
            percent = f" (for {value:g} % write {value / 100:g})" if 2 <= value <= 100 else ""
            raise ValueError(f"max_intensity is a fraction of the cushion's range from 0 to 1, "
                             f"like [limits], not a percent{percent}")
        return value

    def narrowing(self, limits: SafetyLimits | None = None) -> dict[str, Any]:
        """Return the limit changes this device asks for (they can only lower limits).

        Given the limits in force, a device cap above them is dropped: both lower the overall
        cap, so the lower one wins (a `--max-intensity` below the device's value, say).
        """
        changes: dict[str, Any] = {}
        if self.max_intensity is not None and (
            limits is None or self.max_intensity < limits.max_intensity
        ):
            changes["max_intensity"] = self.max_intensity
        if self.sparing:
            changes["sparing"] = True
        return changes


class ScreeningSection(BaseModel):
    """The `[screening]` table: the checklist's answers, when, and the pain of one day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answered_on: dt.date | None = Field(
        None, description="when the whole checklist was last answered; asked again 90 days on"
    )
    unattended: StrictBool = Field(
        False, description="never ask (an unattended rig); the journal records the skip"
    )
    pain_on: dt.date | None = Field(
        None, description='the day "yes" was answered to the pain question: no sessions then'
    )
    answers: dict[str, StrictBool] = Field(
        default_factory=dict, description="checklist key -> true for yes, false for no"
    )

    @field_validator("answers")
    @classmethod
    def _known_keys(cls, value: dict[str, bool]) -> dict[str, bool]:
        known = [c.key for c in CHECKLIST]
        for key in value:
            if key not in known:
                raise FieldError(f"there is no screening question '{key}' (known: "
                                 f"{', '.join(known)})", (key,))
        return value

    @field_validator("answered_on", "pain_on")
    @classmethod
    def _not_in_the_future(cls, value: dt.date | None) -> dt.date | None:
        if value is not None and value > dt.date.today():
            raise ValueError(f"{value} is in the future; write the day it was answered, or "
                             "remove the line to be asked again")
        return value


class Config(BaseModel):
    """The whole user config file."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    limits: LimitsSection = Field(default_factory=LimitsSection)
    defaults: DefaultsSection = Field(default_factory=DefaultsSection)
    device: dict[str, DeviceSection] = Field(default_factory=dict)
    course: CourseSettings = Field(default_factory=CourseSettings)  # controller/course.py
    screening: ScreeningSection = Field(default_factory=ScreeningSection)

    def for_device(self, address: str) -> DeviceSection:
        """Return the settings kept for the cushion at `address` (any letter case)."""
        wanted = address.upper()
        for key, section in self.device.items():
            if key.upper() == wanted:
                return section
        return DeviceSection()


def default_config_path() -> Path:
    """Return the user's config file: $CUSHION_CONFIG, else e.g. ~/.config/cushion/config.toml."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return user_config_path("cushion") / "config.toml"


def load_config(path: Path | None) -> tuple[Config, SafetyLimits]:
    """Read the config file (missing default file = defaults) and the limits it narrows to.

    ConfigError (file, line, key, what to change) for anything unusable, including a device
    table that would raise the cap of `[limits]` (device tables only lower it).
    """
    explicit = path is not None
    path = path or default_config_path()
    if not path.exists():
        if explicit:
            raise ConfigError(
                "the config file does not exist.",
                file=path,
                hint="Check the path given to --config.",
            )
        return Config(), DEFAULT_LIMITS
    data, text = read_toml(path, ConfigError)
    return checked(data, text, path)


def checked(data: dict[str, Any], text: str, path: Path) -> tuple[Config, SafetyLimits]:
    """Validate parsed config text (see `load_config`); ConfigError naming file, line, key."""
    config = validate(Config, data, text, path, ConfigError)
    changes: dict[str, Any] = dict(config.limits.model_extra or {})
    try:
        limits = narrow(DEFAULT_LIMITS, changes, allow_raise=config.limits.allow_raise)
    except LimitError as exc:
        loc: tuple[str, ...] = ("limits", exc.key) if exc.key else ("limits",)
        raise ConfigError(exc.message, file=path, line=locate(text, loc),
                          key=".".join(loc), hint=exc.hint) from exc
    for address, section in config.device.items():
        if section.max_intensity is not None and section.max_intensity > limits.max_intensity:
            loc = ("device", address, "max_intensity")
            raise ConfigError(
                f"max_intensity = {section.max_intensity:g} ({section.max_intensity:.0%}) is "
                f"above the overall cap {limits.max_intensity:g} ({limits.max_intensity:.0%}); "
                "a device table can only lower it.",
                file=path, line=locate(text, loc), key=f'device."{address}".max_intensity',
                hint=f"Write at most {limits.max_intensity:g}, or raise max_intensity under "
                "[limits] (that needs allow_raise = true).",
            )
    return config, limits


def update_config(path: Path, changes: dict[tuple[str, ...], Any]) -> Config:
    """Set (or, for None, remove) keys of the config file, keeping its comments and other
    settings; the new text is checked like `load_config` before it replaces the file.

    `changes` maps a key path such as ("screening", "answers", "tumour") to its new value.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:  # load_config refuses such a file first; this is a guard
        raise ConfigError(f"this is not valid TOML: {exc}.", file=path) from exc
    for keys, value in changes.items():
        table: Any = doc
        for depth, name in enumerate(keys[:-1], start=1):
            if name not in table:
                table[name] = tomlkit.table()
                note = _NEW_TABLE_COMMENTS.get(keys[:depth])
                if note:
                    table[name].add(tomlkit.comment(note))
            table = table[name]
        if value is None:
            table.pop(keys[-1], None)
        else:
            table[keys[-1]] = value
    new_text = tomlkit.dumps(doc)
    if new_text and not new_text.endswith("\n"):
        new_text += "\n"  # a text file ends with a newline (editors, `cat`, appending tables)
    try:
        config, _ = checked(tomllib.loads(new_text), new_text, path)
    except ConfigError as exc:  # the line would be one of the unwritten text: leave it out
        raise ConfigError(exc.message, file=path, key=exc.key,
                          hint=" ".join(filter(None, [exc.hint, "The file was not changed."]))
                          ) from exc
    _write_atomically(path, new_text)
    log.info("config %s: set %s", path, ", ".join(".".join(k) for k in changes))
    return config


_NEW_TABLE_COMMENTS: Final[dict[tuple[str, ...], str]] = {
    ("screening",): "Written by 'cushion screening' and 'cushion run'; see docs/config.md.",
    ("screening", "answers"): "One key per question ('cushion screening --show'); true = yes.",
}


def _write_atomically(path: Path, text: str) -> None:
    """Replace the file in one step, so an interrupted write never leaves half a config."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

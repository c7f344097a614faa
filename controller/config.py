"""The user config file (TOML): default profile and port, and limits narrowed below defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from platformdirs import user_config_path
from pydantic import BaseModel, ConfigDict, Field, field_validator

from controller.course import CourseSettings
from controller.errors import ConfigError
from controller.limits import DEFAULT_LIMITS, LimitError, SafetyLimits, narrow
from protocols.tomlsource import locate, read_toml, validate

if TYPE_CHECKING:
    from pathlib import Path


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


class Config(BaseModel):
    """The whole user config file."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    limits: LimitsSection = Field(default_factory=LimitsSection)
    defaults: DefaultsSection = Field(default_factory=DefaultsSection)
    device: dict[str, DeviceSection] = Field(default_factory=dict)
    course: CourseSettings = Field(default_factory=CourseSettings)  # controller/course.py

    def for_device(self, address: str) -> DeviceSection:
        """Return the settings kept for the cushion at `address` (any letter case)."""
        wanted = address.upper()
        for key, section in self.device.items():
            if key.upper() == wanted:
                return section
        return DeviceSection()


def default_config_path() -> Path:
    """Return where the config file lives for this user (e.g. ~/.config/cushion/config.toml)."""
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

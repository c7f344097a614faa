"""The user config file (TOML): default profile and port, and limits narrowed below defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from platformdirs import user_config_path
from pydantic import BaseModel, ConfigDict, Field

from controller.errors import ConfigError
from controller.limits import DEFAULT_LIMITS, SafetyLimits, narrow
from protocols.tomlsource import read_toml, validate

if TYPE_CHECKING:
    from pathlib import Path


class LimitsSection(BaseModel):
    """The `[limits]` table: any SafetyLimits field, plus `allow_raise` to loosen one."""

    model_config = ConfigDict(extra="allow", frozen=True)

    allow_raise: bool = False


class DefaultsSection(BaseModel):
    """The `[defaults]` table: what `cushion run` uses when an option is not given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str | None = None
    port: str | None = None


class DeviceSection(BaseModel):
    """A `[device."ADDRESS"]` table: settings that follow one cushion across sessions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str | None = None
    max_intensity: float | None = Field(None, ge=0, le=1)
    sparing: bool = False

    def narrowing(self) -> dict[str, Any]:
        """Return the limit changes this device asks for (they can only lower limits)."""
        changes: dict[str, Any] = {}
        if self.max_intensity is not None:
            changes["max_intensity"] = self.max_intensity
        if self.sparing:
            changes["sparing"] = True
        return changes


class Config(BaseModel):
    """The whole user config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limits: LimitsSection = Field(default_factory=LimitsSection)
    defaults: DefaultsSection = Field(default_factory=DefaultsSection)
    device: dict[str, DeviceSection] = Field(default_factory=dict)

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
    """Read the config file (missing default file = defaults) and the limits it narrows to."""
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
    unknown = [k for k in changes if k not in SafetyLimits.model_fields]
    if unknown:
        known = ", ".join(SafetyLimits.model_fields)
        raise ConfigError(
            f"unknown limit '{unknown[0]}'.",
            file=path,
            key=f"limits.{unknown[0]}",
            hint=f"Known limits: {known}.",
        )
    try:
        limits = narrow(DEFAULT_LIMITS, changes, allow_raise=config.limits.allow_raise)
    except ValueError as exc:
        raise ConfigError(str(exc).split("\n")[0] + ".", file=path, key="limits") from exc
    return config, limits

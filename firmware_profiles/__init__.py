"""Device profiles: wire protocols described as data, and the sans-IO codec both sides use."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from firmware_profiles.codec import Codec, CommandParser, ReplyParser
    from firmware_profiles.commands import ProfileError
    from firmware_profiles.loader import builtin_profiles, load_profile, profile_json_schema
    from firmware_profiles.model import Profile, Zone

__all__ = [
    "Codec",
    "CommandParser",
    "Profile",
    "ProfileError",
    "ReplyParser",
    "Zone",
    "builtin_profiles",
    "load_profile",
    "profile_json_schema",
]

# Imported on first use so `import firmware_profiles` stays cheap (pydantic loads lazily).
_WHERE = {
    "Codec": "codec",
    "CommandParser": "codec",
    "ReplyParser": "codec",
    "ProfileError": "commands",
    "builtin_profiles": "loader",
    "load_profile": "loader",
    "profile_json_schema": "loader",
    "Profile": "model",
    "Zone": "model",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first access."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'firmware_profiles' has no attribute '{name}'")
    value = getattr(import_module(f"firmware_profiles.{module}"), name)
    globals()[name] = value
    return value

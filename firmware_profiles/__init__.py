"""Device profiles: wire protocols described as data, and the sans-IO codec both sides use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocols.lazy import lazy_getattr

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


__getattr__ = lazy_getattr("firmware_profiles", _WHERE, globals())

"""Load profiles by built-in name or path, refusing unsafe ones with file, line and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from firmware_profiles.checks import check_profile
from firmware_profiles.commands import ProfileError
from firmware_profiles.model import Profile
from firmware_profiles.problem import Problem
from protocols.tomlsource import brackets, locate, read_toml, validate
from protocols.userdirs import user_dir, user_files

BUILTIN_DIR = Path(__file__).parent / "builtin"
# Arrays of inline tables that are written one item per line: errors point at the item.
_ITEM_ARRAYS = ("layout", "table")


def builtin_profiles() -> dict[str, Path]:
    """Return the built-in profiles by name (the file stem)."""
    return {path.stem: path for path in sorted(BUILTIN_DIR.glob("*.toml"))}


def user_profiles() -> dict[str, Path]:
    """Return the user's profiles (the user data folder's profiles/), name -> TOML file.

    As for programs, a built-in name always means the built-in profile.
    """
    builtins = builtin_profiles()
    return {name: p for name, p in user_files("profiles").items() if name not in builtins}


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a built-in or user profile by name, or a profile file by path; ProfileError if bad."""
    path = None
    if isinstance(name_or_path, str):
        path = builtin_profiles().get(name_or_path) or user_profiles().get(name_or_path)
    if path is None:
        path = Path(name_or_path)
        if not path.exists() and isinstance(name_or_path, str) and path.suffix != ".toml":
            known = ", ".join([*builtin_profiles(), *user_profiles()])
            raise ProfileError(f"no built-in profile or file named '{name_or_path}'.",
                               hint=f"Profiles: {known}; or give a path to a .toml file; or put "
                               f"your profile in {user_dir('profiles')}.")
    data, text = read_toml(path, ProfileError)
    try:
        profile = validate(Profile, data, text, path, ProfileError)
    except ProfileError as exc:
        cause = exc.__cause__
        if not isinstance(cause, ValidationError) or exc.key is None or not (
            set(exc.key.split(".")) & set(_ITEM_ARRAYS)
        ):
            raise
        # Point at the offending item of a multi-line array, not at `layout = [`.
        line = _line(text, tuple(cause.errors()[0]["loc"]))
        raise ProfileError(exc.message, file=path, line=line, key=exc.key,
                           hint=exc.hint) from cause
    try:
        check_profile(profile)
    except Problem as exc:
        raise ProfileError(exc.message, file=path, line=_line(text, exc.loc),
                           key=".".join(str(p) for p in exc.loc), hint=exc.hint) from exc
    return profile


def profile_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of a profile file (TOML keys, as the loader reads them)."""
    schema = Profile.model_json_schema(by_alias=True)
    schema["title"] = "Cushion firmware profile"
    return schema


def _line(text: str, loc: tuple[str | int, ...]) -> int | None:
    """Return the line of a key path, down to the item of a multi-line layout array."""
    line = locate(text, loc)
    names = [name for name in _ITEM_ARRAYS if name in loc]
    if line is None or not names:
        return line
    at = loc.index(names[0])
    if at + 1 >= len(loc) or not isinstance(loc[at + 1], int):
        return line
    index = loc[at + 1]
    assert isinstance(index, int)
    return _array_item_line(text, line, index) or line


def _array_item_line(text: str, line: int, index: int) -> int | None:
    """Return the line where the index-th inline table of the array starting on `line` opens."""
    depth = 0
    seen = -1
    for number, ch in brackets(text, line):
        if ch in "[{":
            depth += 1
            if ch == "{" and depth == 2:
                seen += 1
                if seen == index:
                    return number
        else:
            depth -= 1
            if depth == 0:
                return None
    return None

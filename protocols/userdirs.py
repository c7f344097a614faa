"""The user's own program and profile files, found by name like the built-ins."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

ENV_VAR: Final = "CUSHION_DATA_DIR"


def user_data_dir() -> Path:
    """Return the user's Cushion data folder: $CUSHION_DATA_DIR, else the platform's one."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    from platformdirs import user_data_path

    return user_data_path("cushion")


def user_dir(kind: str) -> Path:
    """Return the folder of the user's files of a kind ("programs" or "profiles")."""
    return user_data_dir() / kind


def user_files(kind: str) -> dict[str, Path]:
    """Return the user's files of a kind, name (file stem) -> path, sorted by name."""
    folder = user_dir(kind)
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.toml")) if p.is_file()}

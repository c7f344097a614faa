"""Find and load program files (built-in names or paths), and export their JSON Schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from protocols.errors import ProgramError
from protocols.program import Program, ProgramFile
from protocols.tomlsource import read_toml, validate
from protocols.userdirs import user_dir, user_files

BUILTIN_DIR = Path(__file__).parent / "builtin"


def builtin_programs() -> dict[str, Path]:
    """Return the built-in programs, name -> TOML file, sorted by name."""
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.toml"))}


def user_programs() -> dict[str, Path]:
    """Return the user's programs (the user data folder's programs/), name -> TOML file.

    A user file named like a built-in is not found by that name: built-in names always mean
    the built-in program (see `shadowed_programs`); load such a file by its path.
    """
    builtins = builtin_programs()
    return {name: p for name, p in user_files("programs").items() if name not in builtins}


def shadowed_programs() -> dict[str, Path]:
    """Return the user's program files that carry a built-in name (and so are not used)."""
    builtins = builtin_programs()
    return {name: p for name, p in user_files("programs").items() if name in builtins}


def _resolve(name_or_path: str | Path) -> Path:
    if isinstance(name_or_path, Path):
        return name_or_path
    builtins = builtin_programs()
    if name_or_path in builtins:
        return builtins[name_or_path]
    mine = user_programs()
    if name_or_path in mine:
        return mine[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists() or len(path.parts) > 1:
        return path
    names = ", ".join([*builtins, *mine])
    raise ProgramError(
        f"there is no built-in or user program '{name_or_path}'.",
        hint=f"Use one of: {names}; give the path of a .toml file; or put your program in "
        f"{user_dir('programs')}.",
    )


def load_program(name_or_path: str | Path) -> Program:
    """Load and validate a program by built-in name or file path; raise ProgramError if bad."""
    path = _resolve(name_or_path)
    data, text = read_toml(path, ProgramError)
    try:
        return validate(ProgramFile, data, text, path, ProgramError).to_program()
    except ProgramError as exc:
        item = _ITEM_KEY.match(exc.key or "")
        if item is None or exc.line is None:
            raise
        # Point at the entry of the multi-line array, not at `contraindications = [`.
        line = _item_line(text, exc.line, int(item.group(1)))
        raise ProgramError(exc.message, file=path, line=line, key=exc.key,
                           hint=exc.hint) from exc.__cause__


_ITEM_KEY = re.compile(r"^program\.(?:contraindications|sources)\.(\d+)\b")


def _item_line(text: str, line: int, index: int) -> int:
    """Return the line of the index-th entry of an array written one entry per line."""
    lines = text.splitlines()
    seen = -1
    for number in range(line + 1, len(lines) + 1):
        entry = lines[number - 1].lstrip()
        if entry.startswith("]"):
            break
        if entry and not entry.startswith("#"):
            seen += 1
            if seen == index:
                return number
    return line


def program_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of a program file (the TOML shape), for editors and docs."""
    schema = ProgramFile.model_json_schema(mode="validation")
    schema["title"] = "Cushion massage program"
    return schema

"""Find and load program files (built-in names or paths), and export their JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from protocols.errors import ProgramError
from protocols.program import Program, ProgramFile
from protocols.tomlsource import read_toml, validate

BUILTIN_DIR = Path(__file__).parent / "builtin"


def builtin_programs() -> dict[str, Path]:
    """Return the built-in programs, name -> TOML file, sorted by name."""
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.toml"))}


def _resolve(name_or_path: str | Path) -> Path:
    if isinstance(name_or_path, Path):
        return name_or_path
    builtins = builtin_programs()
    if name_or_path in builtins:
        return builtins[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists() or len(path.parts) > 1:
        return path
    raise ProgramError(
        f"there is no built-in program '{name_or_path}'.",
        hint=f"Use one of: {', '.join(builtins)}; or give the path of a .toml file.",
    )


def load_program(name_or_path: str | Path) -> Program:
    """Load and validate a program by built-in name or file path; raise ProgramError if bad."""
    path = _resolve(name_or_path)
    data, text = read_toml(path, ProgramError)
    return validate(ProgramFile, data, text, path, ProgramError).to_program()


def program_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of a program file (the TOML shape), for editors and docs."""
    schema = ProgramFile.model_json_schema(mode="validation")
    schema["title"] = "Cushion massage program"
    return schema

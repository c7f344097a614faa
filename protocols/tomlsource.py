"""Read TOML files and turn validation failures into errors that name file, line and key."""

from __future__ import annotations

import re
import tomllib
from typing import TYPE_CHECKING, Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from protocols.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound=InputError)

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"']+)\s*=")
_TOML_POS = re.compile(r"\(at line (\d+), column \d+\)")

# Every Cushion file is a few kB and nests a few levels; anything far beyond is not one of
# ours, and refusing it early keeps tomllib and pydantic from recursing or allocating without end.
MAX_FILE_BYTES: Final = 1024 * 1024
MAX_DEPTH: Final = 32


class FieldError(ValueError):
    """A validator's failure that names the key path (below the validated model) it is about."""

    def __init__(self, message: str, loc: Sequence[str | int]) -> None:
        super().__init__(message)
        self.loc = tuple(loc)


def _split_key(key: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in key.split("."))


def line_paths(text: str) -> list[tuple[int, tuple[str | int, ...]]]:
    """Return (line number, key path) for every table header and key line of a TOML text."""
    out: list[tuple[int, tuple[str | int, ...]]] = []
    counts: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names = _split_key(header.group(2))
            # Rebuild the path, inserting the current index of every array of tables on it.
            path: tuple[str | int, ...] = ()
            for i, name in enumerate(names):
                path = (*path, name)
                is_last = i == len(names) - 1
                if is_last and header.group(1) == "[[":
                    counts[path] = counts.get(path, -1) + 1
                    path = (*path, counts[path])
                    for other in [k for k in counts if k[: len(path)] == path and k != path]:
                        del counts[other]
                elif path in counts:
                    path = (*path, counts[path])
            table = path
            out.append((number, table))
            continue
        key = _KEY.match(line)
        if key:
            out.append((number, (*table, *_split_key(key.group(1)))))
    return out


def locate(text: str, loc: Sequence[str | int]) -> int | None:
    """Return the line that best matches a validation location, or None if nothing does."""
    best: tuple[int, int] | None = None
    for number, path in line_paths(text):
        n = 0
        while n < len(path) and n < len(loc) and path[n] == loc[n]:
            n += 1
        if n == len(path) and n > 0 and (best is None or n > best[0]):
            best = (n, number)
    return best[1] if best else None


def read_toml(path: Path, error: type[E]) -> tuple[dict[str, Any], str]:
    """Parse a TOML file, raising `error` with the file and line on anything unreadable.

    Besides syntax errors this refuses what tomllib or later stages cannot digest safely:
    binary or non-UTF-8 bytes, huge files, nesting deeper than MAX_DEPTH, integers longer
    than Python converts.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read the file ({exc.strerror or exc}).", file=path,
                    hint="Check the path and permissions.") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise error(f"the file is larger than {MAX_FILE_BYTES // 1024} KiB; this is not a "
                    "Cushion TOML file.", file=path, hint="Check that you gave the right file.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1
        raise error(f"this is not a text file: byte {raw[exc.start]:#04x} at offset {exc.start} "
                    "is not UTF-8.", file=path, line=bad_line,
                    hint="Give a TOML file saved as UTF-8 text.") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POS.search(str(exc))
        line = int(match.group(1)) if match else None
        reason = _TOML_POS.sub("", str(exc)).strip()
        raise error(f"this is not valid TOML: {reason}.", file=path, line=line,
                    hint="Fix the syntax at that line.") from exc
    except RecursionError as exc:
        raise error(f"arrays or tables are nested too deeply (more than {MAX_DEPTH} levels).",
                    file=path, line=_deep_line(text),
                    hint="No Cushion file nests more than a few levels; fix the brackets.") from exc
    except ValueError as exc:  # int() refuses more than 4300 digits (sys.int_info)
        raise error("a number is too long to read (thousands of digits).", file=path,
                    hint="Write numbers with a sensible number of digits.") from exc
    _check_values(data, text, path, error)
    return data, text


def brackets(text: str, first_line: int = 1) -> Iterator[tuple[int, str]]:
    """Yield (line number, bracket) for each of `[]{}` outside strings and comments."""
    lines = text.splitlines()
    for number in range(first_line, len(lines) + 1):
        quote = ""
        for ch in lines[number - 1]:
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch == "#":
                break
            elif ch in "[]{}":
                yield number, ch


def _deep_line(text: str) -> int | None:
    """Return the first line where brackets (outside strings and comments) nest > MAX_DEPTH."""
    depth = 0
    for number, ch in brackets(text):
        if ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return number
        else:
            depth = max(depth - 1, 0)
    return None


def _check_values(data: dict[str, Any], text: str, path: Path, error: type[E]) -> None:
    """Refuse nesting deeper than MAX_DEPTH (walked without recursion)."""
    stack: list[tuple[object, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if len(loc) > MAX_DEPTH:
            raise error(f"arrays or tables are nested too deeply (more than {MAX_DEPTH} levels).",
                        file=path, line=locate(text, loc) or _deep_line(text),
                        key=".".join(map(str, loc[:4])) + "...",
                        hint="No Cushion file nests more than a few levels; fix the brackets.")
        if isinstance(value, dict):
            stack.extend((item, (*loc, key)) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, (*loc, i)) for i, item in enumerate(value))


def validate(model: type[M], data: dict[str, Any], text: str, path: Path, error: type[E]) -> M:
    """Validate parsed TOML into a model, raising `error` naming the first bad key and its line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        # A cross-field check (model validator) says which key it is about; point there.
        loc = (*loc, *getattr(first.get("ctx", {}).get("error"), "loc", ()))
        key = ".".join(str(p) for p in loc) or None
        msg = _friendly(first["type"], loc, first["msg"])
        more = len(exc.errors()) - 1
        hint = f"({more} more problem{'s' if more != 1 else ''} after this one.)" if more else None
        raise error(msg.rstrip(".") + ".", file=path, line=locate(text, loc), key=key,
                    hint=hint) from exc


def _friendly(kind: str, loc: tuple[Any, ...], msg: str) -> str:
    """Say what to change, in the file's own words, for pydantic's commonest complaints."""
    name = str(loc[-1]) if loc else "this key"
    if kind == "extra_forbidden":
        return f"'{name}' is not a known key here; fix its spelling or remove it"
    if kind == "missing":
        return f"'{name}' is required here; add it"
    if kind == "finite_number":
        return f"'{name}' must be a finite number, not inf or nan"
    return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg

"""The one rooted exception hierarchy shared by every Cushion package."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class CushionError(Exception):
    """Root of every error Cushion raises on purpose."""


class InputError(CushionError, ValueError):
    """A file or value given by a user cannot be used; says where and what to change."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.key = key
        self.hint = hint
        super().__init__(self.describe())

    def describe(self) -> str:
        """Return the one-paragraph explanation shown to the user."""
        where = []
        if self.file:
            where.append(self.file if self.line is None else f"{self.file}:{self.line}")
        if self.key:
            where.append(f"key '{self.key}'")
        head = ", ".join(where)
        text = f"{head}: {self.message}" if head else self.message
        if self.hint:
            text += f" {self.hint}"
        return text


class ProgramError(InputError):
    """A massage program file is malformed or unsafe."""

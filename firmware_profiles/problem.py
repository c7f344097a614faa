"""A profile problem found after parsing, located by its key path (the loader adds the line)."""

from __future__ import annotations


class Problem(Exception):
    """A cross-field or template problem at a key path such as ("frames", "stop")."""

    def __init__(self, loc: tuple[str | int, ...], message: str, hint: str | None = None) -> None:
        self.loc = loc
        self.message = message
        self.hint = hint
        super().__init__(f"{'.'.join(map(str, loc))}: {message}")

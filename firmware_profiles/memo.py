"""Bounded memo tables for the codec's hot path: a repeated command or frame costs one lookup."""

from __future__ import annotations

from typing import Final, TypeVar

K = TypeVar("K")
V = TypeVar("V")

# Distinct entries remembered per table. A session repeats a few hundred distinct setpoints and
# frames; a sweep over every level, or garbage on the line, must not grow memory without bound,
# so a full table simply starts again (cheaper than tracking recency, nearly as many hits).
MEMO_SIZE: Final = 1024


def remember(table: dict[K, V], key: K, value: V) -> None:
    """Store value under key, emptying the table first when it holds MEMO_SIZE entries."""
    if len(table) >= MEMO_SIZE:
        table.clear()
    table[key] = value

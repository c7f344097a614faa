"""How a step's zones are arranged for a pattern: rows in travel order, and left/right groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocols.zones import ZONE_SIDE

if TYPE_CHECKING:
    from protocols.step import Step


@dataclass(frozen=True, slots=True)
class Layout:
    """Zone indices of one step grouped for patterns (indices into `zones`)."""

    zones: tuple[str, ...]
    rows: tuple[tuple[int, ...], ...]
    sides: tuple[tuple[int, ...], tuple[int, ...]]


def _level(zone: str) -> str:
    return zone.removesuffix("_left").removesuffix("_right")


def layout(step: Step) -> Layout:
    """Group the step's zones into rows (one per body level, in the step's direction) and sides."""
    zones = step.zones
    levels: dict[str, list[int]] = {}
    for i, zone in enumerate(zones):
        levels.setdefault(_level(zone), []).append(i)
    rows = [tuple(ix) for ix in levels.values()]
    if step.direction == "bottom-up":
        rows.reverse()
    left = [i for i, z in enumerate(zones) if ZONE_SIDE.get(z) == "left"]
    right = [i for i, z in enumerate(zones) if ZONE_SIDE.get(z) == "right"]
    # A zone without a side (lumbosacral, hips, calves) joins the smaller side group, row by
    # row in travel order, so it still alternates with a group rather than staying constant.
    for row in rows:
        for i in row:
            if i not in left and i not in right:
                (left if len(left) <= len(right) else right).append(i)
    return Layout(zones=zones, rows=tuple(rows), sides=(tuple(sorted(left)), tuple(sorted(right))))

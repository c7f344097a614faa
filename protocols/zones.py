"""Anatomical zones a program may name, in top-down order, and their groups."""

from __future__ import annotations

from typing import Final

# Top-down order matters: techniques move towards the inguinal lymph nodes (DOMAIN.md).
ANATOMICAL_ZONES: Final[tuple[str, ...]] = (
    "paravertebral_left",
    "paravertebral_right",
    "lumbosacral",
    "gluteal_left",
    "gluteal_right",
    "hips",
    "calves",
)

ZONE_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "paravertebral": ("paravertebral_left", "paravertebral_right"),
    "gluteal": ("gluteal_left", "gluteal_right"),
    "back": ("paravertebral_left", "paravertebral_right", "lumbosacral"),
    "left": ("paravertebral_left", "gluteal_left"),
    "right": ("paravertebral_right", "gluteal_right"),
    "all": ANATOMICAL_ZONES,
}

ZONE_SIDE: Final[dict[str, str]] = {
    "paravertebral_left": "left",
    "gluteal_left": "left",
    "paravertebral_right": "right",
    "gluteal_right": "right",
}


def expand_zones(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Expand zone and group names into anatomical zones, in top-down order, without repeats."""
    wanted: set[str] = set()
    for name in names:
        if name in ZONE_GROUPS:
            wanted.update(ZONE_GROUPS[name])
        elif name in ANATOMICAL_ZONES:
            wanted.add(name)
        else:
            known = ", ".join((*ANATOMICAL_ZONES, *ZONE_GROUPS))
            raise ValueError(f"unknown zone '{name}'; use one of: {known}")
    return tuple(z for z in ANATOMICAL_ZONES if z in wanted)

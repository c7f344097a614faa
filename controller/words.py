"""Plain words for people: body areas for zones, techniques and phases (display, plan, plot)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from protocols.zones import ANATOMICAL_ZONES

if TYPE_CHECKING:
    from collections.abc import Iterable

    from firmware_profiles import Profile

AREA_WORDS: Final[dict[str, str]] = {
    "paravertebral_left": "lower back, left",
    "paravertebral_right": "lower back, right",
    "lumbosacral": "base of the spine",
    "gluteal_left": "buttock, left",
    "gluteal_right": "buttock, right",
    "hips": "thighs",
    "calves": "calves",
}

# Areas that are commonly named together get one name rather than a list.
_JOINED: Final[dict[frozenset[str], str]] = {
    frozenset({"paravertebral_left", "paravertebral_right"}): "lower back",
    frozenset({"gluteal_left", "gluteal_right"}): "buttocks",
    frozenset({"hips", "calves"}): "legs",
    frozenset(ANATOMICAL_ZONES): "whole back and legs",
}

TECHNIQUE_WORDS: Final[dict[str, str]] = {
    "stroking": "stroking",
    "squeezing": "squeezing",
    "rubbing": "rubbing",
    "kneading": "kneading",
    "vibration-continuous": "steady vibration",
    "vibration-intermittent": "tapping vibration",
    "shaking": "shaking",
    "acupressure": "point pressure",
    "heat": "warming",
}

PHASE_WORDS: Final[dict[str, str]] = {
    "introductory": "warm-up",
    "main": "main part",
    "final": "calming down",
}


# The envelope's rules (controller/safety.py) as a person would say them.
RULE_WORDS: Final[dict[str, str]] = {
    "overall cap": "your overall limit",
    "kidney-zone cap": "kept gentle over the kidneys",
    "sparing mode": "sparing mode (first sessions)",
    "introductory-phase cap": "gentle start",
    "final ramp-down": "slow finish",
    "ramp rule": "rising slowly",
}


def area_name(covers: Iterable[str]) -> str:
    """Return the body area a zone lies over, in words ("lower back, left", "buttocks")."""
    areas = [a for a in ANATOMICAL_ZONES if a in set(covers)]
    if not areas:
        return "cushion"
    joined = _JOINED.get(frozenset(areas))
    if joined is not None:
        return joined
    return " and ".join(AREA_WORDS[a] for a in areas)


def zone_names(profile: Profile) -> tuple[str, ...]:
    """Return the body-area name of each of the profile's zones, in zone order, made unique."""
    names: list[str] = []
    for zone in profile.zones:
        name = area_name(zone.covers)
        if name in names:
            name = f"{name} ({zone.id})"
        names.append(name)
    return tuple(names)


def technique_name(technique: str) -> str:
    """Return a technique in words ("steady vibration" for vibration-continuous)."""
    return TECHNIQUE_WORDS.get(technique, technique.replace("-", " "))


def phase_name(kind: str) -> str:
    """Return a phase kind in words ("warm-up" for introductory)."""
    return PHASE_WORDS.get(kind, kind)


def rule_name(rule: str) -> str:
    """Return an envelope rule in words ("kept gentle over the kidneys" for kidney-zone cap)."""
    return RULE_WORDS.get(rule, rule)

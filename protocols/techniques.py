"""The massage techniques a program step may name (DOMAIN.md, technique table)."""

from __future__ import annotations

from enum import StrEnum


class Technique(StrEnum):
    """A classic massage technique the cushion imitates with a per-zone pattern."""

    STROKING = "stroking"
    SQUEEZING = "squeezing"
    RUBBING = "rubbing"
    KNEADING = "kneading"
    VIBRATION_CONTINUOUS = "vibration-continuous"
    VIBRATION_INTERMITTENT = "vibration-intermittent"
    SHAKING = "shaking"
    ACUPRESSURE = "acupressure"
    HEAT = "heat"

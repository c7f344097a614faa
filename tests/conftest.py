"""Shared fixtures: the simulator's pytest plugin and helpers to run sessions on it."""

from __future__ import annotations

pytest_plugins = ["hil.pytest_plugin"]

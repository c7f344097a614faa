"""Controller errors, rooted at `CushionError`, each mixing in the builtin it resembles."""

from __future__ import annotations

from protocols.errors import CushionError, InputError


class UsageError(InputError):
    """A command-line option or config value cannot be used as given."""


class ConfigError(InputError):
    """The user config file is malformed or asks for something unsafe."""


class SessionRefused(InputError):
    """A session may not start now (a contraindication, pain today, a daily limit); says why."""


class PlanError(InputError):
    """A program cannot be run safely on this cushion with these limits (e.g. it is too long)."""


class DeviceError(CushionError, OSError):
    """The device or its link failed; outputs were switched off where the link still allowed."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} {hint}")


class LinkLost(DeviceError, ConnectionError):
    """The link to the device went away."""


class DeviceTimeout(DeviceError, TimeoutError):
    """The device did not answer in time."""


class DeviceRejected(DeviceError):
    """The device refused a command (nak) or answered with garbage."""


class SafetyStop(CushionError):
    """The session was stopped by a safety rule (not by the user)."""

"""The transport interface, the endpoint moniker (`serial:/dev/ttyUSB0?baud=9600`) and registry."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from controller.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from firmware_profiles import Profile

ENTRY_POINT_GROUP = "cushion.transports"

# name -> "module:Class"; imported only when used, like python-can's interface table.
BUILTIN_TRANSPORTS: dict[str, str] = {
    "serial": "controller.transports.serial:SerialTransport",
    "sim": "controller.transports.sim:SimTransport",
    "ble": "controller.transports.ble:BleTransport",
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a cushion is: a transport name, an address and options, parsed from one string."""

    scheme: str
    address: str
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        opts = "&".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.scheme}:{self.address}" + (f"?{opts}" if opts else "")


def parse_endpoint(text: str) -> Endpoint:
    """Parse `scheme:address?key=value`; a bare path means `serial:`."""
    if text.startswith("/") or ":" not in text:
        scheme, rest = "serial", text
    else:
        scheme, rest = text.split(":", 1)
    address, _, query = rest.partition("?")
    if not address:
        raise UsageError(
            f"endpoint '{text}' has no address.",
            hint="Write it as serial:/dev/ttyUSB0 or sim:PROFILE.",
        )
    return Endpoint(scheme, address, dict(parse_qsl(query)))


class Transport(ABC):
    """Moves bytes to and from one cushion; only `controller.device.Device` calls it."""

    name: str = "?"
    reconnects: bool = False  # whether a lost link is worth reconnecting (radio) or final (cable)

    def __init__(self, endpoint: Endpoint, profile: Profile) -> None:
        self.endpoint = endpoint
        self.profile = profile

    @abstractmethod
    async def open(self) -> None:
        """Open the link; raise `DeviceError` with a hint on failure."""

    @abstractmethod
    async def close(self) -> None:
        """Close the link; never raises."""

    @abstractmethod
    async def _write(self, data: bytes) -> None:
        """Write one whole frame (in one piece, so frames never interleave) and flush it."""

    @abstractmethod
    async def read(self) -> bytes:
        """Return the next chunk of bytes from the device; raise `LinkLost` when the link ends."""

    def hand_replies_to(self, receiver: Callable[[bytes], None]) -> bool:
        """Offer to call ``receiver(bytes)`` with replies while a `read` waits; False: not offered.

        A transport that does (the in-process one) calls it where that `read` would have
        returned, and its `read` then ends only with the link, or raises what ``receiver``
        raised. Most transports do not: `read` returns every byte.
        """
        return False


def transport_class(scheme: str) -> type[Transport]:
    """Find the transport class registered under `scheme`, importing it on first use."""
    target = BUILTIN_TRANSPORTS.get(scheme)
    if target is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == scheme:
                target = ep.value
                break
    if target is None:
        known = ", ".join(sorted(BUILTIN_TRANSPORTS))
        raise UsageError(f"no transport named '{scheme}'.", hint=f"Use one of: {known}.")
    module_name, _, cls_name = target.partition(":")
    cls: Any = getattr(importlib.import_module(module_name), cls_name)
    return cls  # type: ignore[no-any-return]


def open_transport(endpoint: Endpoint, profile: Profile) -> Transport:
    """Create (not yet open) the transport for an endpoint."""
    return transport_class(endpoint.scheme)(endpoint, profile)

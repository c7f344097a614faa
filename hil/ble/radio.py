"""bumble's software controller and host, with the fixes this simulator needs.

- `SimController` completes a cancelled LE connect (pitfall 1): bumble's software controller
  acknowledges ``LE Create Connection Cancel`` but never reports the failed connection, so a
  connect to an address nobody advertises would hang past its timeout.
- `SimController` and `QuietHost` skip bumble's per-packet debug strings while DEBUG logging
  is off: bumble builds them with f-strings whether or not anyone logs (30-40 % of CPU).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bumble import hci
from bumble.controller import Controller
from bumble.host import Host

_controller_log = logging.getLogger("bumble.controller")
_host_log = logging.getLogger("bumble.host")


class SimController(Controller):
    """A bumble software `Controller` whose connect cancel reports the failure, as chips do."""

    def on_hci_le_create_connection_cancel_command(self, command: Any) -> Any:
        """Cancel a pending LE connect and report it as failed (Core Vol 4, Part E, 7.8.13)."""
        pending = self.pending_le_connection
        self.pending_le_connection = None
        if pending is not None:
            failed = hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=pending.peer_address.address_type,
                peer_address=pending.peer_address,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
            # After the Command Complete that the base sends once this handler returns.
            asyncio.get_running_loop().call_soon(self.send_hci_packet, failed)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def on_hci_packet(self, packet: Any) -> None:
        """Dispatch a packet from the host without formatting it unless DEBUG is on."""
        if _controller_log.isEnabledFor(logging.DEBUG):
            super().on_hci_packet(packet)
        elif isinstance(packet, hci.HCI_Command):
            self.on_hci_command_packet(packet)
        elif isinstance(packet, hci.HCI_AclDataPacket):
            self.on_hci_acl_data_packet(packet)
        else:
            super().on_hci_packet(packet)

    def send_hci_packet(self, packet: Any) -> None:
        """Hand a packet to the host on the next loop pass, unformatted unless DEBUG is on."""
        if _controller_log.isEnabledFor(logging.DEBUG):
            super().send_hci_packet(packet)
        elif self.host:
            asyncio.get_running_loop().call_soon(self.host.on_packet, bytes(packet))


class QuietHost(Host):
    """A bumble `Host` that formats packets for the log only when DEBUG is on."""

    def send_hci_packet(self, packet: Any) -> None:
        """Send a packet to the controller."""
        if _host_log.isEnabledFor(logging.DEBUG) or self.snooper:
            super().send_hci_packet(packet)
        elif self.hci_sink:
            self.hci_sink.on_packet(bytes(packet))

    def on_hci_packet(self, packet: Any) -> None:
        """Dispatch a packet from the controller."""
        if _host_log.isEnabledFor(logging.DEBUG) or self.snooper:
            super().on_hci_packet(packet)
        elif isinstance(packet, hci.HCI_Event):
            self.on_hci_event_packet(packet)
        elif isinstance(packet, hci.HCI_AclDataPacket):
            self.on_hci_acl_data_packet(packet)
        else:
            super().on_hci_packet(packet)

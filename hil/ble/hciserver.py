"""A TCP server speaking H4 HCI: each client gets a fresh software controller on the radio.

A bumble host in another process (``tcp-client:127.0.0.1:PORT``) then acts as an adapter on
the same virtual radio as the simulated cushions. Unlike bumble's ``tcp-server`` transport,
a reconnecting client gets a clean controller, and a dropped client's links go down on the
cushion's side as a supervision time-out would.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from bumble import hci
from bumble.transport.common import PacketParser

from hil.ble.radio import SimController

if TYPE_CHECKING:
    from bumble.link import LocalLink

log = logging.getLogger(__name__)


class _Sink:
    """Where the controller's HCI packets go: the client's socket."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport: asyncio.Transport | None = transport

    def on_packet(self, packet: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(packet)


class _HciClient(asyncio.Protocol):
    def __init__(self, link: LocalLink, serial: int) -> None:
        self.link = link
        self.serial = serial
        self.controller: SimController | None = None
        self.parser: Any = None
        self.sink: _Sink | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.sink = _Sink(transport)
        self.controller = SimController(
            f"remote-{self.serial}", host_sink=self.sink, link=self.link
        )
        self.parser = PacketParser(self.controller)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:
            log.exception("bad HCI bytes from a remote host; dropping them")

    def connection_lost(self, exc: Exception | None) -> None:
        controller, self.controller = self.controller, None
        if self.sink is not None:
            self.sink.transport = None
        if controller is None:
            return
        for connection in list(controller.le_connections.values()):
            try:
                controller.on_hci_disconnect_command(
                    hci.HCI_Disconnect_Command(
                        connection_handle=connection.handle,
                        reason=hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR,
                    )
                )
            except Exception:
                log.exception("could not drop a link of a departed remote host")
        if controller in self.link.controllers:
            self.link.remove_controller(controller)


async def serve_hci(link: LocalLink, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Listen for H4-over-TCP hosts on ``host:port`` (0: any free port) joining ``link``."""
    serial = iter(range(1, 1 << 30))
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _HciClient(link, next(serial)), host, port)

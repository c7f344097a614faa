"""Serve a simulated cushion over BLE until cancelled (what ``cushion sim --ble`` runs).

Two ways out of the process:

1. **Virtual radio over loopback (default).** The cushion advertises on an in-process radio,
   and an H4-over-TCP server on ``127.0.0.1`` gives every connecting bumble host its own
   software controller on that radio. ``on_ready`` gets the moniker to use, e.g.
   ``"tcp-client:127.0.0.1:40123"``; a controller in another process reaches the cushion with
   ``SimBleWorld(hci_transport=moniker)`` and the bleak backends (``world=`` that world).

2. **A real controller (``transport=``), so a phone app sees the cushion.** Give a bumble
   transport moniker for a USB dongle or the host's adapter, e.g. ``"usb:0"`` (any
   bumble-supported dongle, WinUSB/libusb access needed; on Linux ``usb:2fe3:000b`` picks
   by vendor:product), ``"hci-socket:0"`` (Linux ``hci0``: take it from BlueZ first with
   ``sudo hciconfig hci0 down`` or ``btmgmt power off``; needs ``CAP_NET_RAW``/root) or
   ``"serial:/dev/ttyACM0,1000000"`` (a Zephyr ``hci_uart`` board). The same GATT service
   (`SimBlePeripheral`) then runs on the radio: the cushion advertises its profile name,
   service UUID and manufacturer data, and any central (nRF Connect, the vendor app, bleak
   on another machine) can connect, write frames and receive replies. ``on_ready`` gets the
   device's address. Not testable here (no Bluetooth hardware on this machine).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hil.cushion import SimulatedCushion

if TYPE_CHECKING:
    from collections.abc import Callable

    from firmware_profiles import Profile


async def run_standalone_ble(
    profile: Profile | str,
    *,
    transport: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    name: str | None = None,
    address: str | None = None,
    stop_event: asyncio.Event | None = None,
    on_ready: Callable[[str], object] | None = None,
    cushion: SimulatedCushion | None = None,
) -> SimulatedCushion:
    """Serve a simulated cushion over BLE until ``stop_event`` is set or the task is cancelled.

    Without ``transport``: virtual radio, HCI server on ``host:port`` (0: a free port);
    ``on_ready(moniker)`` once a remote host may connect. With ``transport`` (``"usb:0"``,
    ``"hci-socket:0"``, ...): advertise on that real controller; ``on_ready(address)``.
    Prints nothing; returns the cushion (its recorder holds what happened) when stopped.
    """
    if cushion is None:
        if isinstance(profile, str):
            from firmware_profiles import load_profile

            profile = load_profile(profile)
        cushion = SimulatedCushion(profile)
    stop = stop_event or asyncio.Event()
    if transport is None:
        await _serve_virtual(cushion, host, port, name, address, stop, on_ready)
    else:
        await _serve_on_controller(cushion, transport, name, address, stop, on_ready)
    return cushion


async def _serve_virtual(
    cushion: SimulatedCushion,
    host: str,
    port: int,
    name: str | None,
    address: str | None,
    stop: asyncio.Event,
    on_ready: Callable[[str], object] | None,
) -> None:
    from hil.ble.hciserver import serve_hci
    from hil.ble.world import SimBleWorld

    async with SimBleWorld() as world:
        await world.add_cushion(cushion, name=name, address=address)
        server = await serve_hci(world.link, host, port)
        try:
            bound = server.sockets[0].getsockname()
            if on_ready is not None:
                on_ready(f"tcp-client:{bound[0]}:{bound[1]}")
            await stop.wait()
        finally:
            server.close()


async def _serve_on_controller(
    cushion: SimulatedCushion,
    transport: str,
    name: str | None,
    address: str | None,
    stop: asyncio.Event,
    on_ready: Callable[[str], object] | None,
) -> None:
    from bumble import hci
    from bumble.device import Device
    from bumble.transport import open_transport

    from hil.ble.advert import advertised_name
    from hil.ble.peripheral import SimBlePeripheral
    from hil.ble.radio import QuietHost

    settings = cushion.profile.ble
    if settings is None:
        raise ValueError(f"profile '{cushion.profile.name}' has no [ble] section")
    name = name or advertised_name(settings.name_patterns, cushion.name)
    async with await open_transport(transport) as hci_transport:
        bumble_host = QuietHost(
            controller_source=hci_transport.source, controller_sink=hci_transport.sink
        )
        device = Device(
            name=name,
            address=hci.Address(address) if address else hci.Address.generate_static_address(),
            host=bumble_host,
        )
        await device.power_on()
        peripheral = SimBlePeripheral(
            cushion, device, settings, name=name, advertising_interval_ms=100.0
        )
        await peripheral.start_advertising()
        try:
            if on_ready is not None:
                on_ready(peripheral.address)
            await stop.wait()
        finally:
            await peripheral.close()

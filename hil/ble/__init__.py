"""The simulated cushion over a virtual BLE radio, reachable through the real bleak API.

- `SimBleWorld`: in-process radio (bumble software controllers on a `LocalLink`);
  ``await world.add_cushion(cushion)`` -> `SimBlePeripheral`.
- `SimBleakScanner`, `SimBleakClient`: bleak backends over the world
  (``BleakScanner(backend=SimBleakScanner)``, ``BleakClient(device, backend=SimBleakClient)``).
- `run_standalone_ble`: serve a cushion to a controller in another process (``cushion sim --ble``).

Public names are imported on first use: importing ``hil.ble`` does not import bumble or bleak.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocols.lazy import lazy_getattr

if TYPE_CHECKING:
    from hil.ble.backend import SimBleakClient, SimBleakScanner
    from hil.ble.peripheral import SimBlePeripheral
    from hil.ble.serve import run_standalone_ble
    from hil.ble.world import SimBleWorld, current_world

__all__ = [
    "SimBlePeripheral",
    "SimBleWorld",
    "SimBleakClient",
    "SimBleakScanner",
    "current_world",
    "run_standalone_ble",
]

_WHERE = {
    "SimBleWorld": "world",
    "SimBlePeripheral": "peripheral",
    "SimBleakClient": "backend",
    "SimBleakScanner": "backend",
    "current_world": "world",
    "run_standalone_ble": "serve",
}


__getattr__ = lazy_getattr("hil.ble", _WHERE, globals())

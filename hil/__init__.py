"""Hardware in the loop: a simulated cushion that speaks a firmware profile's bytes.

Public names are imported on first use, so ``import hil.vtime`` stays free of pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocols.lazy import lazy_getattr

if TYPE_CHECKING:
    from hil.cushion import SimulatedCushion
    from hil.faults import Faults
    from hil.firmware import CushionState, Firmware
    from hil.links import InProcessLink, PtyLink
    from hil.recorder import Event, Recorder
    from hil.serve import run_standalone
    from hil.spec import FirmwareSpec, spec_from_profile
    from hil.vtime import VirtualTimeLoop, run_virtual

__all__ = [
    "CushionState",
    "Event",
    "Faults",
    "Firmware",
    "FirmwareSpec",
    "InProcessLink",
    "PtyLink",
    "Recorder",
    "SimulatedCushion",
    "VirtualTimeLoop",
    "run_standalone",
    "run_virtual",
    "spec_from_profile",
]

_WHERE = {
    "CushionState": "firmware",
    "Event": "recorder",
    "Faults": "faults",
    "Firmware": "firmware",
    "FirmwareSpec": "spec",
    "InProcessLink": "links",
    "PtyLink": "ptylink",
    "Recorder": "recorder",
    "SimulatedCushion": "cushion",
    "VirtualTimeLoop": "vtime",
    "run_standalone": "serve",
    "run_virtual": "vtime",
    "spec_from_profile": "spec",
}


__getattr__ = lazy_getattr("hil", _WHERE, globals())

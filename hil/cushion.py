"""The simulated cushion: bytes in through the profile's codec, firmware model, bytes out."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from firmware_profiles import Codec
from firmware_profiles.commands import BadFrame, ProfileError, Reply
from hil.faults import Faults, garble
from hil.firmware import ACK, CushionState, Firmware, OutOfRange
from hil.recorder import Recorder
from hil.spec import spec_from_profile

if TYPE_CHECKING:
    from collections.abc import Callable

    from firmware_profiles import Profile
    from hil.spec import FirmwareSpec


class SimulatedCushion:
    """A cushion as its firmware behaves, speaking ``profile``'s bytes (see `hil.firmware`)."""

    def __init__(
        self,
        profile: Profile,
        *,
        spin_up_s: float = 0.3,
        name: str | None = None,
        out_of_range: OutOfRange = "reject",
    ) -> None:
        self.profile = profile
        self.name = name or profile.name
        self._codec = Codec(profile)
        self._parser = self._codec.command_parser()
        self.spec = self._with_status_fields(spec_from_profile(profile))
        self.recorder = Recorder(self.spec.zone_count, self.spec.min_level)
        self.faults = Faults()
        self.firmware = Firmware(
            self.spec, self.recorder, spin_up_s=spin_up_s, out_of_range=out_of_range
        )
        self.on_transmit: Callable[[bytes], None] | None = None  # set by the link
        self._ack_bytes: bytes | None = None

    def __repr__(self) -> str:
        return f"SimulatedCushion({self.name!r})"

    @property
    def state(self) -> CushionState:
        """A snapshot of the outputs now (commanded and actual levels, heat, mode, power)."""
        return self.firmware.state()

    def feed(self, data: bytes) -> None:
        """Take bytes from the controller: decode, obey, reply through ``on_transmit``."""
        if self.faults.drop_rx:
            return
        self.firmware.ignore_commands = self.faults.ignore_commands
        for item in self._parser.feed(data):
            if isinstance(item, BadFrame):
                self.recorder.add(self.firmware.now(), "bad_frame", item)
                reply = self.firmware.bad_frame()
            else:
                reply = self.firmware.handle(item)
            if reply is not None:
                self._reply(reply)

    def reboot(self) -> None:
        """Power-cycle the device: outputs off, timers and half-received bytes forgotten."""
        self.firmware.reboot()
        self._parser = self._codec.command_parser()

    def _with_status_fields(self, spec: FirmwareSpec) -> FirmwareSpec:
        """Learn which fields the profile's status frame carries by round-tripping one."""
        if not self.profile.supports("status"):
            return spec
        probe = Firmware(spec, Recorder(spec.zone_count, spec.min_level)).status_fields(0.0)
        decoded = self._codec.reply_parser().feed(self._codec.encode_reply(Reply("status", probe)))
        if len(decoded) != 1 or not isinstance(decoded[0], Reply):
            raise ProfileError(
                f"profile '{self.profile.name}': the simulator cannot round-trip a status reply.",
                key="replies.status",
            )
        return replace(spec, status_fields=tuple(decoded[0].fields))

    def _reply(self, reply: Reply) -> None:
        self.recorder.add(self.firmware.now(), "reply", reply)
        if self.faults.silent or self.on_transmit is None:
            return
        if reply is ACK:
            if self._ack_bytes is None:
                self._ack_bytes = self._codec.encode_reply(ACK)
            data = self._ack_bytes
        else:
            data = self._codec.encode_reply(reply)
        if self.faults.garble_replies:
            data = garble(data)
        if self.faults.reply_delay_s > 0:
            self.firmware.loop().call_later(self.faults.reply_delay_s, self._transmit, data)
        else:
            self.on_transmit(data)

    def _transmit(self, data: bytes) -> None:
        if self.on_transmit is not None:
            self.on_transmit(data)

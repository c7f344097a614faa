"""The simulated cushion: bytes in through the profile's codec, firmware model, bytes out."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from firmware_profiles import Codec
from firmware_profiles.commands import BadFrame, ProfileError, Reply
from hil.faults import Faults, garble, truncate
from hil.firmware import ACK, BOOT, CushionState, Firmware, OutOfRange
from hil.recorder import Recorder
from hil.spec import spec_from_profile

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from firmware_profiles import Profile
    from hil.spec import FirmwareSpec


class LinkEnd(Protocol):
    """The device end of a link as the cushion knows it: something that can hang up."""

    def hang_up(self, down_s: float | None = None) -> None:
        """Close the link from the device side; stay out of reach ``down_s`` (None: no limit)."""


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
        # Until this loop time, links opened to the cushion carry nothing (hang_up down time).
        self.unreachable_until = float("-inf")
        self._links: list[LinkEnd] = []
        self._ack_bytes: bytes | None = None
        self._boot = profile.supports("boot")
        self._tx: deque[tuple[float, bytes]] = deque()  # replies held back, in order
        self._tx_timer: asyncio.TimerHandle | None = None
        self._rx_fill = 0.0  # bytes in the input buffer (rx_buffer fault)
        self._rx_t = 0.0

    def __repr__(self) -> str:
        return f"SimulatedCushion({self.name!r})"

    @property
    def state(self) -> CushionState:
        """A snapshot of the outputs now (commanded and actual levels, heat, mode, power)."""
        self._sync_faults()
        return self.firmware.state()

    def _sync_faults(self) -> None:
        faults, firmware = self.faults, self.firmware
        firmware.ignore_commands = faults.ignore_commands
        firmware.nak_all = faults.nak_all
        firmware.nak_spare_stop = faults.nak_spare_stop
        firmware.temp_override_c = faults.overheat_c

    def feed(self, data: bytes) -> None:
        """Take bytes from the controller: decode, obey, reply through ``on_transmit``."""
        faults = self.faults
        if faults.drop_rx:
            return
        if faults.rx_buffer is not None:
            data = self._admit(data, faults.rx_buffer, faults.rx_drain_bytes_per_s)
            if not data:
                return
        self._sync_faults()
        for item in self._parser.feed(data):
            if isinstance(item, BadFrame):
                self.recorder.add(self.firmware.now(), "bad_frame", item)
                reply = self.firmware.bad_frame()
            else:
                reply = self.firmware.handle(item)
            if reply is not None:
                self._reply(reply)

    def _admit(self, data: bytes, size: int, per_s: float) -> bytes:
        """Return the bytes a full-able input buffer takes; record the ones it loses."""
        now = self.firmware.now()
        fill = max(0.0, self._rx_fill - (now - self._rx_t) * per_s)
        room = max(0, int(size - fill + 1e-9))
        taken = data[:room]
        self._rx_fill, self._rx_t = fill + len(taken), now
        if len(taken) < len(data):
            self.recorder.add(now, "rx_overflow", len(data) - len(taken))
        return taken

    def reboot(self, *, announce: bool = True) -> None:
        """Power-cycle the device: outputs off, timers, half-received and unsent bytes forgotten.

        The next status reply shows the fresh state (all off, default mode). With `announce`,
        a profile's boot frame goes out at once (else call `announce_boot` when booted).
        """
        self.firmware.reboot()
        self._parser = self._codec.command_parser()
        self._tx.clear()
        if self._tx_timer is not None:
            self._tx_timer.cancel()
            self._tx_timer = None
        self._rx_fill = 0.0
        if announce:
            self.announce_boot()

    def announce_boot(self) -> None:
        """Send the profile's boot frame (`[replies.boot]`), if it has one."""
        if self._boot:
            self._reply(BOOT)

    # -- links -----------------------------------------------------------------------------

    def attach(self, link: LinkEnd) -> None:
        """Register a link's device end, so `hang_up` can close it (links call this)."""
        if link not in self._links:
            self._links.append(link)

    def detach(self, link: LinkEnd) -> None:
        """Forget a link's device end (links call this when they close)."""
        if link in self._links:
            self._links.remove(link)

    def hang_up(self, down_s: float | None = None) -> None:
        """Close every attached link from the device side, as a pulled cable or a power loss.

        ``down_s``: how long the cushion stays out of reach (None: until a link reopens it).
        Each link decides what that means (see `InProcessLink`, `PtyLink`).
        """
        self.recorder.add(self.firmware.now(), "link", "hangup by device")
        self._tx.clear()
        for link in tuple(self._links):
            link.hang_up(down_s)

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
        faults = self.faults
        if faults.silent or self.on_transmit is None:
            return
        if reply is ACK:
            if self._ack_bytes is None:
                self._ack_bytes = self._codec.encode_reply(ACK)
            data = self._ack_bytes
        else:
            data = self._codec.encode_reply(reply)
        if faults.garble_replies:
            data = garble(data)
        if faults.truncate_replies is not None:
            data = truncate(data, faults.truncate_replies)
        delay, piece = faults.reply_delay_s, faults.split_replies
        if delay <= 0 and not self._tx and (piece <= 0 or len(data) <= piece):
            self.on_transmit(data)  # the common case: no fault, nothing held back
            return
        now = self.firmware.now()
        if piece <= 0:
            self._hold(now + delay, data)
            return
        gap = faults.split_gap_s
        for k, start in enumerate(range(0, len(data), piece)):
            self._hold(now + delay + k * gap, data[start : start + piece])

    def _hold(self, when: float, data: bytes) -> None:
        """Queue reply bytes for ``when`` (loop time); they leave in order, never overtaking."""
        if self._tx:
            when = max(when, self._tx[-1][0])
        self._tx.append((when, data))
        if self._tx_timer is None:
            self._tx_timer = self.firmware.loop().call_at(self._tx[0][0], self._release)

    def _release(self) -> None:
        self._tx_timer = None
        now = self.firmware.now()
        while self._tx and self._tx[0][0] <= now + 1e-9:
            _, data = self._tx.popleft()
            if self.on_transmit is not None:
                self.on_transmit(data)
        if self._tx:
            self._tx_timer = self.firmware.loop().call_at(self._tx[0][0], self._release)

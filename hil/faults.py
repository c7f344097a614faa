"""Fault switches for the simulated cushion (flip them in a test, `reset()` to clear)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Faults:
    """Ways the simulated device misbehaves; all off by default."""

    silent: bool = False  # never reply (commands are still obeyed)
    garble_replies: bool = False  # corrupt one byte of every reply frame
    drop_rx: bool = False  # ignore every incoming byte (the watchdog is not fed)
    ignore_commands: bool = False  # decode and reply, but do not change outputs
    reply_delay_s: float = 0.0  # hold every reply this long before transmitting, s

    def reset(self) -> None:
        """Switch every fault off."""
        self.silent = False
        self.garble_replies = False
        self.drop_rx = False
        self.ignore_commands = False
        self.reply_delay_s = 0.0


def garble(frame: bytes) -> bytes:
    """Return ``frame`` with its middle byte flipped, so checksum or syntax no longer holds."""
    if not frame:
        return frame
    i = len(frame) // 2
    return frame[:i] + bytes([frame[i] ^ 0x5A]) + frame[i + 1 :]

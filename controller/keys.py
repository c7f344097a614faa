"""Single keys from the terminal while a session runs: pause, scale, stop, emergency stop.

Only the live display reads keys, and only when stdin is a terminal: `_drive` in the CLI
puts a `Keyboard` in `STDIN` for the run, and the runner binds it to the session once the
session exists. The terminal is in cbreak mode while bound (no echo, no line buffering, but
Ctrl-C and Ctrl-\\ still raise their signals) and is restored on every way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
import tty
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final, Protocol

from controller.session import EXIT_INTERRUPTED

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

ESC: Final = 0x1B
# A lone Esc is told from the start of an escape sequence (an arrow key: ESC [ A) by waiting
# this long (real time) for more bytes; a terminal sends a sequence's bytes in one write.
ESC_TIMEOUT_S: Final = 0.1

# Key -> action. Space pauses and resumes; `-` and `+` (or `=`, unshifted on most layouts)
# scale; `s` stops with the ramp-down; Esc and `q` cut the outputs at once.
ACTIONS: Final[dict[str, str]] = {
    " ": "pause",
    "p": "pause",
    "-": "weaker",
    "_": "weaker",
    "+": "stronger",
    "=": "stronger",
    "s": "stop",
    "S": "stop",
    "q": "emergency",
    "Q": "emergency",
    "esc": "emergency",
    "\r": "resume",  # Enter, as in plain lines: resumes, never pauses
    "\n": "resume",
}

FOOTER: Final = (
    "space pause/continue   - + weaker/stronger   s stop gently   Esc or q stop now   "
    "Ctrl-C stop gently (twice: now)"
)


class KeyDecoder:
    """Turns terminal bytes into keys: one character each, "esc", or nothing for a sequence.

    An ESC starts a pending sequence. `ESC [` or `ESC O` followed by parameter bytes and a
    final byte (0x40..0x7E) is a special key (arrows, F-keys) and yields nothing. An ESC
    followed by anything else, or by nothing until `expire()`, is the Esc key: a stop is
    never lost to a sequence that did not come.
    """

    def __init__(self) -> None:
        self._pending = bytearray()

    @property
    def pending(self) -> bool:
        """Tell whether an ESC waits for more bytes (call `expire` after the timeout)."""
        return bool(self._pending)

    def feed(self, data: bytes) -> list[str]:
        """Return the keys completed by `data`."""
        keys: list[str] = []
        for byte in data:
            if self._pending:
                keys.extend(self._continue(byte))
            elif byte == ESC:
                self._pending.append(byte)
            else:
                keys.append(chr(byte) if byte < 0x80 else "")
        return [k for k in keys if k]

    def expire(self) -> list[str]:
        """Return "esc" if an ESC was waiting (nothing else came in time)."""
        if not self._pending:
            return []
        self._pending.clear()
        return ["esc"]

    def _continue(self, byte: int) -> list[str]:
        seq = self._pending
        if len(seq) == 1:  # just after the ESC
            if byte in (0x5B, 0x4F):  # '[' or 'O': a CSI or SS3 sequence begins
                seq.append(byte)
                return []
            seq.clear()
            # Esc then another key (or Esc twice): the Esc counts, then the next byte.
            return ["esc", *self.feed(bytes([byte]))]
        csi = seq[1] == 0x5B
        if csi and (0x20 <= byte <= 0x3F or (len(seq) == 2 and byte == 0x5B)):
            seq.append(byte)  # parameters (and the Linux console's F-keys, ESC [ [ A)
            return []
        seq.clear()
        if 0x40 <= byte <= 0x7E:
            return []  # the final byte: a whole special key, which means nothing here
        # Not a sequence after all (a control byte inside it): Esc, then the byte itself.
        return ["esc", *self.feed(bytes([byte]))]


def _real_delay(loop: asyncio.AbstractEventLoop, seconds: float) -> float:
    """Return the loop-clock delay that lasts `seconds` of real time (scaled clocks)."""
    speed = getattr(loop, "speed", 1.0)
    return seconds * speed if isinstance(speed, int | float) else seconds


class KeyTarget(Protocol):
    """What the keys act on: a session, or all of a node's sessions at once."""

    @property
    def paused(self) -> bool:
        """Tell whether it is paused."""
        ...

    def pause(self, reason: str = ...) -> None:
        """Turn outputs off and hold."""

    def resume(self) -> None:
        """Go on, ramping up from zero."""

    def scale_by(self, steps: int) -> float:
        """Scale the intensity by `steps` tenths."""
        ...

    def stop(self, reason: str = ...) -> None:
        """Stop with the ramp-down."""

    async def emergency_stop(self, reason: str = ..., *, exit_code: int = ...) -> None:
        """Cut every output at once."""


class Keyboard:
    """Reads keys from a terminal's fd and acts on a session; see `bind`."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.session: KeyTarget | None = None
        self.decoder = KeyDecoder()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @contextlib.contextmanager
    def bind(self, session: KeyTarget) -> Iterator[Keyboard]:
        """Read keys for `session` in cbreak mode until the block ends; the mode is restored."""
        loop = asyncio.get_running_loop()
        saved = termios.tcgetattr(self.fd)
        try:
            tty.setcbreak(self.fd, termios.TCSANOW)
            self.session = session
            loop.add_reader(self.fd, self._readable)
            yield self
        finally:
            self.session = None
            with contextlib.suppress(Exception):
                loop.remove_reader(self.fd)
            if self._timer is not None:
                self._timer.cancel()
            # TCSAFLUSH: keys typed after the session do not reach the shell as commands.
            termios.tcsetattr(self.fd, termios.TCSAFLUSH, saved)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # the terminal went away (SIGHUP follows and stops the run)
            log.warning("stopped reading keys: %s", exc)
            asyncio.get_running_loop().remove_reader(self.fd)
            return
        if not data:
            asyncio.get_running_loop().remove_reader(self.fd)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for key in self.decoder.feed(data):
            self.press(key)
        if self.decoder.pending:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(_real_delay(loop, ESC_TIMEOUT_S), self._expire)

    def _expire(self) -> None:
        self._timer = None
        for key in self.decoder.expire():
            self.press(key)

    def press(self, key: str) -> None:
        """Act on one key (see ACTIONS); other keys do nothing."""
        action = ACTIONS.get(key)
        session = self.session
        if action is None or session is None:
            return
        if action == "pause":
            if session.paused:
                session.resume()
            else:
                session.pause()
        elif action == "resume":
            session.resume()
        elif action == "weaker":
            session.scale_by(-1)
        elif action == "stronger":
            session.scale_by(+1)
        elif action == "stop":
            session.stop()
        else:
            task = asyncio.get_running_loop().create_task(
                session.emergency_stop(
                    f"emergency stop ({'Esc' if key == 'esc' else key})",
                    exit_code=EXIT_INTERRUPTED,
                )
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


# What a run in this context may do with stdin: a Keyboard reads single keys (the live
# display on a terminal); True lets Enter resume a paused session (plain lines, as before);
# False never reads it (--json). A ContextVar rather than a parameter, so the layers between
# the command line and the runner stay as they are.
STDIN: ContextVar[Keyboard | bool] = ContextVar("cushion_stdin", default=True)


@contextlib.contextmanager
def answering(fd: int) -> Iterator[Callable[[], str]]:
    """Hold the terminal in cbreak mode for a run of questions; yield a one-key reader.

    One mode switch for all the questions, made at once and restored without a flush, so a
    key typed the moment a question appears is kept (click.getchar switches per key and
    flushes what was typed meanwhile). Ctrl-C still raises its signal.
    """
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd, termios.TCSANOW)

    def key() -> str:
        data = os.read(fd, 1)
        if not data:
            raise EOFError
        return data.decode("latin-1")

    try:
        yield key
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)

"""The keys of a node run in a terminal: each key acts on every cushion the node runs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from controller.session import EXIT_INTERRUPTED

if TYPE_CHECKING:
    from controller.node import Node
    from controller.session import Session

log = logging.getLogger(__name__)

FOOTER = ("keys: space pause/continue all   - + weaker/stronger   s stop all gently   "
          "Esc or q stop all now   Ctrl-C end the node (all off)")


class AllCushions:
    """The node's running sessions as one `KeyTarget`, so the session's keys work on a node."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _sessions(self) -> list[Session]:
        return [s.session for s in self.node.slots.values() if s.session is not None]

    @property
    def paused(self) -> bool:
        """Tell whether every running session is paused (space then continues them)."""
        sessions = self._sessions()
        return bool(sessions) and all(s.paused for s in sessions)

    def pause(self, reason: str = "paused at the node's keyboard") -> None:
        """Pause every running session."""
        for s in self._sessions():
            s.pause(reason)

    def resume(self) -> None:
        """Resume every paused session, each ramping up from zero."""
        for s in self._sessions():
            s.resume()

    def scale_by(self, steps: int) -> float:
        """Scale every session by `steps` tenths; return the lowest scale now playing."""
        return min((s.scale_by(steps) for s in self._sessions()), default=1.0)

    def stop(self, reason: str = "stopped at the node's keyboard") -> None:
        """Stop every session with its ramp-down."""
        for s in self._sessions():
            s.stop(reason)

    async def emergency_stop(self, reason: str = "emergency stop (node keyboard)", *,
                             exit_code: int = EXIT_INTERRUPTED) -> None:
        """Cut every cushion's outputs at once, the cushions still opening included."""
        log.warning("%s: every cushion off", reason)
        await self.node.cut_all(reason, exit_code=exit_code)

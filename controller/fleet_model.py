"""What the fleet view knows: nodes and cushions on a broker, built from their messages (sans-IO).

`FleetModel.on_message(topic, payload)` takes one message from `cushion/+/status`,
`cushion/+/+/state` or `cushion/+/+/events` and returns the change lines it causes (the
`--json` objects, docs/mqtt.md "Fleet view"); a message that changes nothing returns none,
so a node republishing the same retained state after a reconnect is not news.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from typing import Any, Final

from controller import mqtt_topics as topics

log = logging.getLogger(__name__)

RECENT_EVENTS: Final = 50  # kept for the live view's "recent" lines; older ones drop off
# Events a person watching a fleet wants to see; the rest (steps, phases) are in the state.
NOTABLE_EVENTS: Final = frozenset({
    "session_started", "paused", "resumed", "stop_requested", "all_off", "fault",
    "link_down", "link_up", "session_ended",
})

Line = dict[str, Any]


class FleetModel:
    """Nodes (online / offline) and cushions (their last retained state) seen on one broker."""

    def __init__(self) -> None:
        self.nodes: dict[str, str] = {}  # node -> "online" | "offline" | "unknown"
        self.cushions: dict[tuple[str, str], dict[str, Any]] = {}
        # (wall-clock time received, node, cushion, event) of the notable events
        self.recent: deque[tuple[float, str, str, dict[str, Any]]] = deque(maxlen=RECENT_EVENTS)
        self.topics: set[str] = set()  # retained topics seen: a new one means not settled yet

    # -- messages -----------------------------------------------------------------------

    def on_message(self, topic: str, payload: bytes, *, at: float = 0.0) -> list[Line]:
        """Take one message received at `at` (epoch s); return the change lines it causes."""
        levels = topic.split("/")
        if len(levels) < 3 or levels[0] != topics.PREFIX or levels[1] == "fleet":
            return []
        node = levels[1]
        if len(levels) == 3 and levels[2] == "status":
            self.topics.add(topic)
            return self._status(node, payload)
        if len(levels) == 4 and levels[3] == "state":
            self.topics.add(topic)
            return self._state(node, levels[2], payload)
        if len(levels) == 4 and levels[3] == "events":
            return self._event(node, levels[2], payload, at)
        return []

    def _status(self, node: str, payload: bytes) -> list[Line]:
        text = payload.strip().decode("utf-8", "replace")
        if not text:  # the retained status was cleared: the node is gone for good
            if node not in self.nodes:
                return []
            del self.nodes[node]
            return [{"kind": "node", "node": node, "status": None}]
        if text not in ("online", "offline"):
            log.debug("%s: unexpected status %r", node, text)
            return []
        if self.nodes.get(node) == text:
            return []
        self.nodes[node] = text
        return [node_line(node, text)]

    def _state(self, node: str, cushion: str, payload: bytes) -> list[Line]:
        key = (node, cushion)
        if not payload.strip():  # an empty retained state: the cushion was removed
            if key not in self.cushions:
                return []
            del self.cushions[key]
            return [{"kind": "cushion", "node": node, "cushion": cushion, "state": None}]
        state = _json_object(payload)
        if state is None:
            log.debug("%s/%s: a state that is not a JSON object", node, cushion)
            return []
        out: list[Line] = []
        if node not in self.nodes:  # a state before its node's status (or a node without one)
            self.nodes[node] = "unknown"
            out.append(node_line(node, "unknown"))
        if self.cushions.get(key) != state:
            self.cushions[key] = state
            out.append(cushion_line(node, cushion, state))
        return out

    def _event(self, node: str, cushion: str, payload: bytes, at: float) -> list[Line]:
        event = _json_object(payload)
        if event is None:
            return []
        if event.get("kind") in NOTABLE_EVENTS:
            self.recent.append((at, node, cushion, event))
        return [{"kind": "event", "node": node, "cushion": cushion, "event": event}]

    # -- reading ------------------------------------------------------------------------

    def snapshot(self) -> list[Line]:
        """Return one line per node, then one per cushion, in name order."""
        lines = [node_line(n, s) for n, s in sorted(self.nodes.items())]
        lines.extend(cushion_line(n, c, s) for (n, c), s in sorted(self.cushions.items()))
        return lines

    def rows(self) -> list[tuple[str, str | None, dict[str, Any] | None]]:
        """Return (node, cushion, state) in name order; a node without cushions has one row."""
        out: list[tuple[str, str | None, dict[str, Any] | None]] = []
        for node in sorted(self.nodes):
            mine = sorted((c, s) for (n, c), s in self.cushions.items() if n == node)
            if not mine:
                out.append((node, None, None))
            out.extend((node, c, s) for c, s in mine)
        return out

    def running(self) -> int:
        """Return how many cushions run a session on a node that is not offline."""
        return sum(1 for (n, _), s in self.cushions.items()
                   if s.get("running") and self.nodes.get(n) != "offline")


def node_line(node: str, status: str | None) -> Line:
    """Return the JSON line of a node's status (None: the node is gone)."""
    return {"kind": "node", "node": node, "status": status}


def cushion_line(node: str, cushion: str, state: dict[str, Any] | None) -> Line:
    """Return the JSON line of a cushion's retained state, as the node published it."""
    return {"kind": "cushion", "node": node, "cushion": cushion, "state": state}


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None

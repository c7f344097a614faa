"""`cushion serve` in a real terminal: the session's keys act on every cushion of the node.

The node runs as the real command in a pseudo-terminal (pexpect) against a real broker;
what the keys did is read from what the node publishes (state and events), not from it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pexpect  # type: ignore[import-untyped]
import pytest

from controller import mqtt_topics as topics
from tests.test_mqtt_node import PROGRAM, TIMEOUT_S, Watcher, playing, run, watcher

if TYPE_CHECKING:
    from tests.mqtt_broker import Broker

pytestmark = pytest.mark.realtime
CUSHION = str(Path(sys.executable).with_name("cushion"))
NODE = "keys"
CUSHIONS = ("lp4-ascii", "vb6-binary")


def test_node_keys_pause_resume_and_stop_every_cushion(mqtt_broker: Broker) -> None:
    env = {**os.environ, "TERM": "xterm-256color"}
    args = ["serve", "--mqtt", mqtt_broker.url, "--node-id", NODE, "--yes"]
    for c in CUSHIONS:
        args += ["--device", f"sim:{c}"]
    child = pexpect.spawn(CUSHION, args, env=env, dimensions=(24, 80), encoding="utf-8",
                          codec_errors="replace", timeout=TIMEOUT_S)

    def events(w: Watcher, c: str, kind: str) -> list[dict[str, object]]:
        out = [json.loads(p) for t, p, _ in w.log if t == topics.events(NODE, c)]
        return [e for e in out if e["kind"] == kind]

    async def go() -> None:
        async with watcher(mqtt_broker) as w:
            await w.until(lambda: w.last.get(topics.availability(NODE)) == b"online", "online")
            await asyncio.to_thread(child.expect, "keys: space pause")
            for c in CUSHIONS:
                assert (await w.command(NODE, c, {"command": "start", "program": PROGRAM}))["ok"]
            for c in CUSHIONS:
                await w.state_where(NODE, c, playing, f"{c} playing")

            child.send(" ")
            for c in CUSHIONS:
                await w.state_where(NODE, c, lambda s: s["paused"], f"{c} paused by the key")
                assert events(w, c, "paused")[-1]["reason"] == "paused at the node's keyboard"
            child.send(" ")
            for c in CUSHIONS:
                await w.state_where(NODE, c, lambda s: s["running"] and not s["paused"],
                                    f"{c} going on")
            for c in CUSHIONS:
                await w.until(lambda: events(w, c, "resumed"), f"{c} resumed")  # noqa: B023

            child.send("q")
            for c in CUSHIONS:
                await w.state_where(NODE, c, lambda s: not s["running"], f"{c} cut by q")
                stop = events(w, c, "stop_requested")[-1]
                assert stop["emergency"] is True
            assert w.last.get(topics.availability(NODE)) == b"online"  # the node stays

            child.sendintr()
            await asyncio.to_thread(child.expect, pexpect.EOF)
            await w.until(lambda: w.last.get(topics.availability(NODE)) == b"offline",
                          "offline after Ctrl-C")

    try:
        run(go())
        child.close()
        assert child.exitstatus == 0, child.before
    finally:
        if child.isalive():
            child.terminate(force=True)

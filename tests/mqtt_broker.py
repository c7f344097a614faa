"""A real MQTT broker for tests: Mosquitto on a free loopback port, else amqtt in a subprocess.

Enable with ``pytest_plugins = ["tests.mqtt_broker"]``; the ``mqtt_broker`` fixture yields a
running `Broker` (``host``, ``port``, ``protocol``, ``url``) that ``restart()`` brings back on
the same port. Every process it starts is ended when the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
    from typing import Any

MOSQUITTO_PATHS = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
# Generous: a loaded 2-core machine can take seconds to start a Python broker.
READY_TIMEOUT_S = 30.0

_AMQTT_MAIN = """
import asyncio, sys
from amqtt.broker import Broker

async def main(port):
    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "sys_interval": 0,
        "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
        "topic-check": {"enabled": False},
    })
    await broker.start()
    await asyncio.Event().wait()

asyncio.run(main(int(sys.argv[1])))
"""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str | None:
    """Return the path of the mosquitto binary, or None when it is not installed."""
    if os.environ.get("CUSHION_TEST_BROKER") == "amqtt":
        return None  # test the fallback on a machine that has Mosquitto
    for name in MOSQUITTO_PATHS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _amqtt_available() -> bool:
    try:
        import amqtt  # noqa: F401
    except ImportError:
        return False
    return True


class Broker:
    """One broker process on a fixed loopback port; stop and start it at will."""

    def __init__(self, workdir: Path) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.binary = mosquitto_binary()
        if self.binary is None and not _amqtt_available():
            pytest.skip("no MQTT broker: install mosquitto, or amqtt (the test extra)")
        self.kind = "mosquitto" if self.binary else "amqtt"
        # amqtt speaks MQTT 3.1.1 only; Mosquitto speaks 5 (response topics, correlation data).
        self.protocol = "5" if self.binary else "3.1.1"
        self.workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = workdir / "broker.log"

    @property
    def url(self) -> str:
        """Return the broker as the node's --mqtt URL."""
        query = "" if self.protocol == "5" else "?protocol=3.1.1"
        return f"mqtt://{self.host}:{self.port}{query}"

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        assert self._proc is None
        if self.binary is not None:
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(
                f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
                "log_dest stderr\nset_tcp_nodelay true\n",
                encoding="utf-8",
            )
            cmd = [self.binary, "-c", str(conf)]
        else:
            cmd = [sys.executable, "-c", _AMQTT_MAIN, str(self.port)]
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start: {self._log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(
                (self.host, self.port), timeout=1.0
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} did not listen on port {self.port} in time")

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 10 s)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def restart(self, down_s: float = 0.5) -> None:
        """Stop the broker, stay down `down_s`, and start it again on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()

    @property
    def running(self) -> bool:
        """Tell whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None


@contextlib.asynccontextmanager
async def pumping(pump: Callable[[], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """Run a client's message pump for the block; cancel it and wait for it after."""
    import aiomqtt

    task = asyncio.create_task(pump())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await task


@pytest.fixture
def mqtt_broker() -> Iterator[Broker]:
    """A running broker on a free loopback port, stopped after the test."""
    with tempfile.TemporaryDirectory(prefix="cushion-broker-") as tmp:
        broker = Broker(Path(tmp))
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


__all__ = ["Broker", "free_port", "mosquitto_binary", "mqtt_broker", "pumping"]

if __name__ == "__main__":  # pragma: no cover - a manual check: python tests/mqtt_broker.py
    with tempfile.TemporaryDirectory() as tmp:
        b = Broker(Path(tmp))
        b.start()
        print(b.kind, b.url, os.getpid())
        b.restart()
        print("restarted", b.running)
        b.stop()

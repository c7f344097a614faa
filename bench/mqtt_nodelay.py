"""Why a node's reply takes ~44 ms: Nagle's algorithm on loopback, with and without TCP_NODELAY.

Run: .venv/bin/python bench/mqtt_nodelay.py [--trials N] [--quick]

A node answers a command by publishing an event and then the reply right after it (two small
packets back to back). With Nagle's algorithm on (the default for paho-mqtt, which aiomqtt
wraps, and for Mosquitto), the second packet waits until the first is acknowledged, and the
peer delays its ACK by up to 40 ms. This script publishes a QoS 0 message then a QoS 1
message from client A and times publish -> the second received by client B, for each
combination of Mosquitto's `set_tcp_nodelay` and TCP_NODELAY on A's socket. Baseline in the
same run: the QoS 1 message alone (no packet in front of it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import aiomqtt
import benchlib

from tests.mqtt_broker import free_port, mosquitto_binary


@contextlib.contextmanager
def mosquitto(workdir: Path, nodelay: bool) -> Iterator[int]:
    """Run Mosquitto on a free loopback port (`set_tcp_nodelay` as asked); yield the port."""
    binary = mosquitto_binary()
    if binary is None:
        raise SystemExit("this bench needs Mosquitto")
    port = free_port()
    conf = workdir / f"mosquitto-{port}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"set_tcp_nodelay {'true' if nodelay else 'false'}\n", encoding="utf-8")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


async def trials(port: int, client_nodelay: bool, n: int, pair: bool) -> list[float]:
    """Return publish -> receive (s) of the QoS 1 message, `n` times, 50 ms apart."""
    loop = asyncio.get_running_loop()
    got: dict[bytes, float] = {}
    arrived = asyncio.Event()
    v5 = aiomqtt.ProtocolVersion.V5
    async with aiomqtt.Client("127.0.0.1", port, protocol=v5) as b, aiomqtt.Client(
        "127.0.0.1", port, protocol=v5
    ) as a:
        if client_nodelay:
            sock = a._client.socket()  # paho's socket: aiomqtt has no option for this
            if isinstance(sock, socket.socket):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await b.subscribe("bench/#", qos=1)

        async def pump() -> None:
            async for m in b.messages:
                if isinstance(m.payload, bytes):
                    got[m.payload] = loop.time()
                    arrived.set()

        task = asyncio.create_task(pump())
        out = []
        try:
            for i in range(n):
                await asyncio.sleep(0.05)
                key = b"r%d" % i
                t0 = loop.time()
                if pair:
                    await a.publish("bench/event", b"e%d" % i, qos=0)
                await a.publish("bench/reply", key, qos=1)
                async with asyncio.timeout(5):
                    while key not in got:
                        arrived.clear()
                        await arrived.wait()
                out.append(got[key] - t0)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Measure the four combinations and the baseline; print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="20 trials each")
    args = parser.parse_args(argv)
    n = 20 if args.quick else args.trials
    print(benchlib.machine())
    rows = []
    with tempfile.TemporaryDirectory(prefix="cushion-bench-") as tmp:
        for broker_nodelay in (False, True):
            with mosquitto(Path(tmp), broker_nodelay) as port:
                for client_nodelay in (False, True):
                    for pair in (True, False):
                        values = asyncio.run(trials(port, client_nodelay, n, pair))
                        label = ("event + reply" if pair else "reply alone (baseline)")
                        rows.append([label, "on" if broker_nodelay else "off",
                                     "on" if client_nodelay else "off", len(values),
                                     *benchlib.summary_ms(values)])
    print(f"{n} trials each\n")
    print(benchlib.table(["publish", "broker nodelay", "client nodelay", "n", "p50 ms",
                          "p99 ms", "max ms"], rows))


if __name__ == "__main__":
    main()

"""The node on a locked-down Mosquitto: TLS with client certificates, passwords, the docs' ACL.

The broker runs with the ACL exactly as docs/mqtt.md prints it, so a documented ACL that
Mosquitto refuses, or that lets one node reach another's cushions, fails here. Mosquitto only:
the embedded fallback broker has no ACL files.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller import mqtt_topics as topics
from controller.clock import loop_factory
from controller.limits import DEFAULT_LIMITS
from controller.mqtt_settings import parse_mqtt_url, tls_parameters
from controller.node import Node
from controller.node_cushion import CushionSpec
from controller.transports.base import Endpoint
from firmware_profiles import load_profile
from tests.mqtt_broker import free_port, mosquitto_binary, pumping

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 60.0
PASSWORDS = {"n1": "n1-Secret-6d1f", "n2": "n2-Secret-90ab", "homeassistant": "ha-Secret-41c2"}
CUSHION = "lp4-ascii"

pytestmark = pytest.mark.skipif(
    mosquitto_binary() is None or shutil.which("mosquitto_passwd") is None
    or shutil.which("openssl") is None,
    reason="needs mosquitto, mosquitto_passwd and openssl (the mosquitto and openssl packages)",
)


def documented_acl() -> str:
    """Return the ACL block of docs/mqtt.md, as printed there."""
    text = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")
    m = re.search(r"```text\n# /etc/mosquitto/acl[^\n]*\n(.*?)```", text, re.S)
    assert m, "docs/mqtt.md has no ACL block"
    return m.group(1)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path) -> None:
    """A throw-away CA, a server certificate for 127.0.0.1 and one client certificate."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=cushion-test-ca", cwd=d)
    for name, san in (("server", "IP:127.0.0.1,DNS:localhost"), ("client", "DNS:client")):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n", encoding="utf-8")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=d)


class SecureBroker:
    """Mosquitto with TLS (client certificate required), passwords and the documented ACL."""

    def __init__(self, d: Path) -> None:
        self.dir = d
        self.port = free_port()
        make_certs(d)
        pw = d / "passwords"
        for i, (user, password) in enumerate(PASSWORDS.items()):
            subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(pw),
                            user, password], check=True, capture_output=True)
        (d / "acl").write_text(documented_acl(), encoding="utf-8")
        conf = d / "mosquitto.conf"
        conf.write_text(
            # Run as root (a CI container), Mosquitto would drop to user `mosquitto`, which
            # cannot read this test's private directory: stay the user we are.
            f"user {getpass.getuser()}\n"
            f"per_listener_settings false\nallow_anonymous false\npassword_file {pw}\n"
            f"acl_file {d / 'acl'}\npersistence false\nlog_dest stderr\n"
            f"log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            f"listener {self.port} 127.0.0.1\ncafile {d / 'ca.pem'}\n"
            f"certfile {d / 'server.pem'}\nkeyfile {d / 'server.key'}\n"
            "require_certificate true\n",
            encoding="utf-8",
        )
        self.log = d / "broker.log"
        binary = mosquitto_binary()
        assert binary is not None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto refused its configuration (the docs' ACL?): "
                                     f"{self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1.0):
                return
            time.sleep(0.05)
        raise AssertionError("mosquitto did not listen in time")

    def tls(self, *, client_cert: bool = True) -> aiomqtt.TLSParameters:
        d = self.dir
        if not client_cert:
            return aiomqtt.TLSParameters(ca_certs=str(d / "ca.pem"))
        params = tls_parameters(d / "ca.pem", d / "client.pem", d / "client.key")
        assert params is not None
        return params

    def url(self, user: str) -> str:
        return f"mqtts://{user}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    broker = SecureBroker(tmp_path)
    try:
        yield broker
    finally:
        broker.stop()


def run(coro: Any) -> Any:
    with asyncio.Runner(loop_factory=loop_factory(None)) as runner:
        return runner.run(coro)


class Client:
    """A real aiomqtt client logged in as `user`, keeping every message it may read."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.log: list[tuple[str, bytes, Any]] = []
        self.changed = asyncio.Event()

    async def pump(self) -> None:
        async for m in self.client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            self.log.append((str(m.topic), payload, m.properties))
            self.changed.set()

    def last(self, topic: str) -> bytes | None:
        found = [p for t, p, _ in self.log if t == topic]
        return found[-1] if found else None

    async def until(self, check: Callable[[], Any], what: str) -> Any:
        async with asyncio.timeout(TIMEOUT_S):
            while not (got := check()):
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await self.changed.wait()
            return got
        raise AssertionError(what)  # pragma: no cover

    async def command(self, node: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send a command; the reply comes on the node's own reply topic (the ACL's rule)."""
        ident = os.urandom(8).hex().encode()
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = topics.reply(node)
        props.CorrelationData = ident
        n = len(self.log)
        await self.client.publish(topics.command(node, CUSHION), json.dumps(body), qos=1,
                                  properties=props)

        def mine() -> dict[str, Any] | None:
            for t, p, pr in self.log[n:]:
                if t == topics.reply(node) and getattr(pr, "CorrelationData", None) == ident:
                    return json.loads(p)  # type: ignore[no-any-return]
            return None

        return await self.until(mine, f"a reply to {body}")  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def client(broker: SecureBroker, user: str, *subs: str) -> AsyncIterator[Client]:
    async with aiomqtt.Client("127.0.0.1", broker.port, username=user,
                              password=PASSWORDS[user], tls_params=broker.tls(),
                              protocol=aiomqtt.ProtocolVersion.V5, timeout=20) as c:
        w = Client(c)
        for sub in subs:
            await c.subscribe(sub, qos=1)
        async with pumping(w.pump):
            yield w


@contextlib.asynccontextmanager
async def node(broker: SecureBroker, node_id: str, password: str) -> AsyncIterator[Node]:
    spec = CushionSpec(CUSHION, Endpoint("sim", CUSHION), load_profile(CUSHION))
    settings = parse_mqtt_url(broker.url(node_id), password=password, tls=broker.tls())
    n = Node(settings, [spec], node_id=node_id, limits=DEFAULT_LIMITS, handle_signals=False)
    task = asyncio.create_task(n.run())
    try:
        yield n
    finally:
        n.request_stop("test over")
        async with asyncio.timeout(TIMEOUT_S):
            await task


def running(raw: bytes | None) -> bool:
    return bool(raw) and bool(json.loads(raw or b"{}").get("running"))


def test_tls_passwords_and_the_documented_acl(
    secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def go() -> None:
        state = topics.state("n1", CUSHION)
        async with client(secure_broker, "homeassistant", "cushion/#", "homeassistant/#") as ha, \
                node(secure_broker, "n1", PASSWORDS["n1"]) as n1:
            await ha.until(lambda: ha.last(topics.availability("n1")) == b"online", "n1 online")
            # The node may write its discovery, under the ACL's per-node pattern.
            await ha.until(lambda: ha.last(topics.discovery("n1", CUSHION)), "n1 discovery")
            reply = await ha.command("n1", {"command": "start", "program": "lumbar-short"})
            assert reply["ok"], reply
            await ha.until(lambda: running(ha.last(state)), "n1 playing")

            # Another node, logged in as itself: it can neither read n1 nor command it.
            async with client(secure_broker, "n2", "cushion/n1/#", "cushion/n2/#") as n2:
                await n2.client.publish(topics.command("n1", CUSHION),
                                        json.dumps({"command": "emergency_stop"}), qos=1)
                await n2.client.publish("cushion/n2/marker", b"x", qos=1)
                await n2.until(lambda: n2.last("cushion/n2/marker"), "n2's own message")
                assert not [t for t, _, _ in n2.log if t.startswith("cushion/n1/")]
            # Commands reach n1 in the order the broker took them: the rogue stop came first.
            reply = await ha.command("n1", {"command": "pause"})
            assert reply["ok"] and reply["message"] == "paused", reply
            session = n1.slots[CUSHION].session
            assert session is not None and session.paused
            stops = [p for t, p, _ in ha.log
                     if t == topics.events("n1", CUSHION) and b"stop_requested" in p]
            assert stops == []

            # Home Assistant may stop the fleet.
            await ha.client.publish(topics.FLEET_STOP, json.dumps({"reason": "test"}), qos=1)
            await ha.until(lambda: not running(ha.last(state)), "the fleet stop ended it")
            sim = n1.slots[CUSHION].sim
            assert sim is not None
            assert all(level <= sim.spec.min_level for level in sim.state.commanded)
            payloads = b"".join(p for _, p, _ in ha.log)
        for secret in PASSWORDS.values():
            assert secret.encode() not in payloads
            assert secret not in caplog.text

    run(go())


def test_a_wrong_password_is_retried_and_never_logged(
    secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-Password-77"

    async def go() -> None:
        refused = asyncio.Event()
        loop = asyncio.get_running_loop()

        class Seen(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "reconnecting" in record.getMessage():
                    loop.call_soon_threadsafe(refused.set)

        seen = Seen()
        logging.getLogger("controller.node").addHandler(seen)
        try:
            async with node(secure_broker, "n1", wrong) as n1:
                async with asyncio.timeout(TIMEOUT_S):
                    await refused.wait()
                assert not n1.online.is_set()
        finally:
            logging.getLogger("controller.node").removeHandler(seen)
        assert "authoriz" in caplog.text.lower()

    run(go())
    assert wrong not in caplog.text


def test_the_broker_requires_the_client_certificate(secure_broker: SecureBroker) -> None:
    """Without it the handshake fails: so the node's connecting above proves it sent one."""

    async def go() -> None:
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("127.0.0.1", secure_broker.port, username="homeassistant",
                                      password=PASSWORDS["homeassistant"],
                                      tls_params=secure_broker.tls(client_cert=False),
                                      timeout=10):
                pass

    run(go())


def test_serve_over_tls_from_the_command_line(secure_broker: SecureBroker,
                                              tmp_path: Path) -> None:
    secret = tmp_path / "n1.password"
    secret.write_text(PASSWORDS["n1"] + "\n", encoding="utf-8")
    d = secure_broker.dir
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "serve", "--mqtt", secure_broker.url("n1"),
         "--device", f"sim:{CUSHION}", "--node-id", "n1", "--yes", "--password-file",
         str(secret), "--tls-ca", str(d / "ca.pem"), "--tls-cert", str(d / "client.pem"),
         "--tls-key", str(d / "client.key")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )
    try:
        async def online() -> None:
            async with client(secure_broker, "homeassistant", "cushion/#") as ha:
                await ha.until(lambda: ha.last(topics.availability("n1")) == b"online",
                               "the served node online")

        run(online())
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, err.decode()
    assert PASSWORDS["n1"] not in (out + err).decode()
    assert "mqtts://n1@127.0.0.1" in err.decode()


"""Where a broker is and how to log in: the --mqtt URL, credentials and TLS (docs/mqtt.md)."""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

import aiomqtt

from controller.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class MqttSettings:
    """Where the broker is and how to log in; the password is never shown."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    protocol: str = "5"
    tls: aiomqtt.TLSParameters | None = None
    keepalive: int = 15

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str, *, password: str | None = None,
                   tls: aiomqtt.TLSParameters | None = None) -> MqttSettings:
    """Parse `mqtt://[user@]host[:port][?protocol=3.1.1]`; UsageError naming --mqtt."""
    hint = "Write it as mqtt://[user@]host[:port], e.g. mqtt://localhost:1883."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"--mqtt {url}: {exc}.", key="--mqtt", hint=hint) from exc
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise UsageError(f"--mqtt {url} is not an MQTT broker URL.", key="--mqtt", hint=hint)
    if parts.password is not None:
        raise UsageError("--mqtt must not carry a password (it would show in process lists).",
                         key="--mqtt", hint="Use --password-file or CUSHION_MQTT_PASSWORD.")
    query = dict(parse_qsl(parts.query))
    protocol = query.pop("protocol", "5")
    if protocol not in ("5", "3.1.1") or query:
        raise UsageError(f"--mqtt {url}: unknown option.", key="--mqtt",
                         hint="The one option is protocol=5 (the default) or protocol=3.1.1.")
    if parts.scheme == "mqtts" and tls is None:
        tls = aiomqtt.TLSParameters()
    return MqttSettings(
        parts.hostname, port or (8883 if tls else 1883),
        unquote(parts.username) if parts.username else None, password, protocol, tls,
    )


def read_password(password_file: Path | None) -> str | None:
    """Return the broker password from --password-file or CUSHION_MQTT_PASSWORD, if any."""
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--password-file {password_file}: {exc.strerror}.",
                             key="--password-file",
                             hint="Give a readable file holding only the password.") from exc
    return os.environ.get("CUSHION_MQTT_PASSWORD") or None


def tls_parameters(ca: Path | None, cert: Path | None, key: Path | None
                   ) -> aiomqtt.TLSParameters | None:
    """Return TLS settings from --tls-ca/--tls-cert/--tls-key; UsageError naming the option."""
    for option, path in (("--tls-ca", ca), ("--tls-cert", cert), ("--tls-key", key)):
        if path is not None and not path.is_file():
            raise UsageError(f"{option} {path} is not a file.", key=option,
                             hint="Give the path of a PEM file.")
    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together.", key="--tls-key",
                         hint="Give both, or neither.")
    if not (ca or cert):
        return None
    return aiomqtt.TLSParameters(ca_certs=str(ca) if ca else None,
                                 certfile=str(cert) if cert else None,
                                 keyfile=str(key) if key else None)


def no_delay(client: aiomqtt.Client) -> None:
    """Turn Nagle's algorithm off on a connected client's socket (paho leaves it on).

    With it on, a small publish right behind another waits ~40 ms on loopback for the
    first one's delayed ACK (bench/mqtt_nodelay.py); aiomqtt has no option for it.
    """
    sock = client._client.socket()  # the one way to reach paho's socket
    if isinstance(sock, socket.socket):  # a TLS socket is one too; a websocket is not
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

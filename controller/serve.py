"""`cushion serve`: turn the command line into cushions and a node, and run it."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING

from controller import mqtt_topics as topics
from controller.errors import UsageError
from controller.mqtt_settings import parse_mqtt_url, read_password, tls_parameters
from controller.node import Node
from controller.node_cushion import CushionSpec

if TYPE_CHECKING:
    from pathlib import Path

    from controller.config import Config
    from controller.limits import SafetyLimits

log = logging.getLogger(__name__)


def cushion_specs(devices: tuple[str, ...], port: str | None,
                   profile_name: str | None) -> list[CushionSpec]:
    """Turn --device monikers (and --port/--profile) into cushion specs with unique ids."""
    from controller.transports.base import Endpoint, parse_endpoint
    from firmware_profiles import load_profile

    wanted: list[tuple[Endpoint, str, str | None]] = []
    for text in devices:
        ep = parse_endpoint(text)
        opts = dict(ep.options)
        name = opts.pop("name", None)
        if ep.scheme == "sim":
            wanted.append((Endpoint("sim", ep.address), ep.address, name))
        else:
            prof = opts.pop("profile", None)
            if prof is None:
                raise UsageError(f"--device {text} needs its profile.", key="--device",
                                 hint=f"Write it as {ep.scheme}:{ep.address}?profile=NAME.")
            wanted.append((Endpoint(ep.scheme, ep.address, opts), prof, name))
    if port is not None:
        if profile_name is None:
            raise UsageError("--port needs --profile.", key="--profile",
                             hint="Add --profile NAME (see 'cushion profiles').")
        wanted.append((parse_endpoint(port), profile_name, None))
    if not wanted:
        raise UsageError("serve needs at least one cushion.", key="--device",
                         hint="Add --device sim:lp4-ascii, or --port DEV --profile NAME.")
    specs: list[CushionSpec] = []
    for endpoint, prof, name in wanted:
        base = name or prof
        cid = base.lower()
        n = 2
        while any(s.name == cid for s in specs):
            cid, n = f"{base.lower()}-{n}", n + 1
        if not topics.ID_PATTERN.match(cid):
            raise UsageError(f"cushion id '{cid}' cannot be a topic level.", key="--device",
                             hint="Give ?name= with lower-case letters, digits, - and _.")
        specs.append(CushionSpec(cid, endpoint, load_profile(prof)))
    return specs


def serve_main(
    mqtt_url: str, devices: tuple[str, ...], *, port: str | None, profile_name: str | None,
    node_id: str | None, password_file: Path | None,
    tls: tuple[Path | None, Path | None, Path | None], config_path: Path | None, cfg: Config,
    limits: SafetyLimits, skip_screening: bool,
) -> int:
    """Run `cushion serve` until SIGINT/SIGTERM; return the exit code."""
    import socket

    from controller.clock import loop_factory

    params = tls_parameters(*tls)
    settings = parse_mqtt_url(mqtt_url, password=read_password(password_file), tls=params)
    nid = (node_id or socket.gethostname().split(".")[0]).lower()
    if not topics.ID_PATTERN.match(nid):
        raise UsageError(f"--node-id {nid} cannot be a topic level.", key="--node-id",
                         hint="Use lower-case letters, digits, - and _ (at most 63).")
    specs = cushion_specs(devices, port, profile_name)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    log.info("node %s: %s on %s", nid, ", ".join(s.name for s in specs), settings)

    keyboard = None
    if sys.stdin.isatty():  # a node run in a terminal takes the session's keys, for all
        from controller.keys import Keyboard

        keyboard = Keyboard(sys.stdin.fileno())

    async def go() -> None:
        node = Node(settings, specs, node_id=nid, limits=limits, config_path=config_path,
                    config=cfg, skip_screening=skip_screening, keyboard=keyboard)
        await node.run()

    with asyncio.Runner(loop_factory=loop_factory(None)) as runner:
        runner.run(go())
    return 0

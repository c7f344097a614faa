"""Golden frames for nus-text: the LP4 text protocol carried over a Nordic-UART BLE service."""

from __future__ import annotations

import pytest

from firmware_profiles import Codec, load_profile
from firmware_profiles.commands import Command, Reply
from tests.test_codec_lp4 import GOLDEN, GOLDEN_REPLIES

CODEC = Codec(load_profile("nus-text"))


@pytest.mark.parametrize(("command", "frame"), GOLDEN)
def test_golden_command(command: Command, frame: bytes) -> None:
    assert CODEC.encode(command) == frame
    assert CODEC.command_parser().feed(frame) == [command]


@pytest.mark.parametrize(("reply", "frame"), GOLDEN_REPLIES)
def test_golden_reply(reply: Reply, frame: bytes) -> None:
    assert CODEC.encode_reply(reply) == frame
    assert CODEC.reply_parser().feed(frame) == [reply]


def test_identity_is_the_nordic_uart_service() -> None:
    ble = load_profile("nus-text").ble
    assert ble is not None
    assert ble.service_uuid == "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
    assert (ble.write_uuid, ble.notify_uuid) == (
        "6e400002-b5a3-f393-e0a9-e50e24dcca9e",
        "6e400003-b5a3-f393-e0a9-e50e24dcca9e",
    )

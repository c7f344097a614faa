"""The worked example in docs/profiles.md loads and behaves as the page says."""

from __future__ import annotations

import re
from pathlib import Path

from firmware_profiles import Codec, load_profile
from firmware_profiles.checksums import crc16_ccitt_false
from firmware_profiles.commands import Keepalive, Reply, SetZone, Stop

DOC = Path(__file__).parent.parent / "docs" / "profiles.md"


def _example(tmp_path: Path) -> Path:
    text = DOC.read_text()
    worked = text[text.index("## Worked example"):]
    block = re.search(r"```toml\n(.*?)```", worked, re.S)
    assert block is not None
    path = tmp_path / "acme-bp3.toml"
    path.write_text(block.group(1))
    return path


def test_worked_example_loads_and_encodes(tmp_path: Path) -> None:
    profile = load_profile(_example(tmp_path))
    assert profile.name == "acme-bp3"
    assert [z.covers for z in profile.zones][2] == ("gluteal_left", "gluteal_right", "hips")
    codec = Codec(profile)
    frame = codec.encode(SetZone(zone=0, level=40))
    assert frame[:6] == bytes([0x7E, 0x10, 0x01, 40, 0x08, 0x00])
    assert int.from_bytes(frame[6:], "big") == crc16_ccitt_false(frame[1:6])
    assert codec.command_parser().feed(frame + codec.encode(Stop())) == [
        SetZone(0, 40, 0.8), Stop()
    ]
    assert codec.command_parser().feed(codec.encode(Keepalive())) == [Keepalive()]
    nak = codec.encode_reply(Reply("nak", {"code": 7}))
    assert codec.reply_parser().feed(nak) == [Reply("nak", {"code": 7})]


def test_intro_snippet_is_true() -> None:
    codec = Codec(load_profile("lp4-ascii"))
    assert codec.encode(SetZone(zone=0, level=5)) == b"Z1L05T15*58\r\n"
    assert codec.reply_parser().feed(b"OK\r\n") == [Reply("ack")]
    assert codec.command_parser().feed(b"X*72\r\n") == [Stop()]

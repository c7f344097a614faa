"""Known-answer tests of every checksum, plus a bit-by-bit reference for the table CRCs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_profiles.checksums import CHECKSUM_NAMES, CHECKSUM_SIZES, CHECKSUMS

CHECK = b"123456789"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("crc16-modbus", 0x4B37),  # CRC catalogue check value
        ("crc16-ccitt-false", 0x29B1),
        ("crc8", 0xF4),
        ("sum8", 0xDD),  # 0x31 + ... + 0x39 = 477 = 0x1DD
        ("sum8-twos", 0x23),  # 0x100 - 0xDD
        ("sum8-inverted", 0x22),  # 0xFF - 0xDD
        ("xor8", 0x31),
    ],
)
def test_check_value(name: str, expected: int) -> None:
    assert CHECKSUMS[name](CHECK) == expected


def test_every_name_has_a_function_and_size() -> None:
    assert set(CHECKSUMS) == set(CHECKSUM_NAMES) == set(CHECKSUM_SIZES)
    assert CHECKSUM_SIZES["crc16-modbus"] == 2
    assert CHECKSUM_SIZES["xor8"] == 1


def test_empty_input() -> None:
    assert CHECKSUMS["crc16-modbus"](b"") == 0xFFFF
    assert CHECKSUMS["crc16-ccitt-false"](b"") == 0xFFFF
    assert CHECKSUMS["sum8"](b"") == 0
    assert CHECKSUMS["sum8-twos"](b"") == 0


def _crc16_modbus_bitwise(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _crc16_ccitt_bitwise(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _crc8_bitwise(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


@given(st.binary(max_size=64))
def test_tables_match_bitwise_reference(data: bytes) -> None:
    assert CHECKSUMS["crc16-modbus"](data) == _crc16_modbus_bitwise(data)
    assert CHECKSUMS["crc16-ccitt-false"](data) == _crc16_ccitt_bitwise(data)
    assert CHECKSUMS["crc8"](data) == _crc8_bitwise(data)


@given(st.binary(max_size=64))
def test_twos_complement_sums_to_zero(data: bytes) -> None:
    assert (sum(data) + CHECKSUMS["sum8-twos"](data)) & 0xFF == 0
    assert (CHECKSUMS["sum8"](data) + CHECKSUMS["sum8-inverted"](data)) == 0xFF

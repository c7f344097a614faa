"""Frame checksums by name: 8-bit sums, xor, crc8 and two crc16 variants, table-driven."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal, get_args

if TYPE_CHECKING:
    from collections.abc import Callable

ChecksumName = Literal[
    "sum8", "sum8-twos", "sum8-inverted", "xor8", "crc8", "crc16-modbus", "crc16-ccitt-false"
]
CHECKSUM_NAMES: Final[tuple[str, ...]] = get_args(ChecksumName)


def sum8(data: bytes | bytearray) -> int:
    """Return the sum of all bytes modulo 256."""
    return sum(data) & 0xFF


def sum8_twos(data: bytes | bytearray) -> int:
    """Return the two's complement of the 8-bit sum (frame plus checksum sums to 0)."""
    return -sum(data) & 0xFF


def sum8_inverted(data: bytes | bytearray) -> int:
    """Return the ones' complement (bitwise inverse) of the 8-bit sum."""
    return ~sum(data) & 0xFF


def xor8(data: bytes | bytearray) -> int:
    """Return the xor of all bytes."""
    acc = 0
    for byte in data:
        acc ^= byte
    return acc


def _crc8_table(poly: int) -> tuple[int, ...]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


def _crc16_reflected_table(poly_reflected: int) -> tuple[int, ...]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ poly_reflected if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


def _crc16_msb_table(poly: int) -> tuple[int, ...]:
    table = []
    for n in range(256):
        crc = n << 8
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return tuple(table)


_CRC8: Final = _crc8_table(0x07)
_MODBUS: Final = _crc16_reflected_table(0xA001)  # 0x8005 reflected
_CCITT: Final = _crc16_msb_table(0x1021)


def crc8(data: bytes | bytearray) -> int:
    """Return CRC-8 (poly 0x07, init 0x00, no reflection, no final xor; "CRC-8/SMBUS")."""
    crc = 0
    table = _CRC8
    for byte in data:
        crc = table[crc ^ byte]
    return crc


def crc16_modbus(data: bytes | bytearray) -> int:
    """Return CRC-16/MODBUS (poly 0x8005 reflected, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    table = _MODBUS
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def crc16_ccitt_false(data: bytes | bytearray) -> int:
    """Return CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor)."""
    crc = 0xFFFF
    table = _CCITT
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


def crc8_from(crc: int, data: bytes | bytearray) -> int:
    """Return crc8 continued over data from the crc8 of the bytes before it."""
    table = _CRC8
    for byte in data:
        crc = table[crc ^ byte]
    return crc


def crc16_modbus_from(crc: int, data: bytes | bytearray) -> int:
    """Return crc16_modbus continued over data from the crc16_modbus of the bytes before it."""
    table = _MODBUS
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def crc16_ccitt_false_from(crc: int, data: bytes | bytearray) -> int:
    """Return crc16_ccitt_false continued over data from the value of the bytes before it."""
    table = _CCITT
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


def xor8_from(acc: int, data: bytes | bytearray) -> int:
    """Return xor8 continued over data from the xor8 of the bytes before it."""
    for byte in data:
        acc ^= byte
    return acc


def sum8_from(acc: int, data: bytes | bytearray) -> int:
    """Return sum8 continued over data from the sum8 of the bytes before it."""
    return (acc + sum(data)) & 0xFF


CHECKSUMS: Final[dict[str, Callable[[bytes | bytearray], int]]] = {
    "sum8": sum8,
    "sum8-twos": sum8_twos,
    "sum8-inverted": sum8_inverted,
    "xor8": xor8,
    "crc8": crc8,
    "crc16-modbus": crc16_modbus,
    "crc16-ccitt-false": crc16_ccitt_false,
}

CHECKSUM_SIZES: Final[dict[str, int]] = {
    name: 2 if name.startswith("crc16") else 1 for name in CHECKSUM_NAMES
}

# Checksums whose value is also their running state, so a frame's constant prefix is summed
# once at compile time and each frame sums only the bytes after it.
CHECKSUMS_FROM: Final[dict[str, Callable[[int, bytes | bytearray], int]]] = {
    "sum8": sum8_from,
    "xor8": xor8_from,
    "crc8": crc8_from,
    "crc16-modbus": crc16_modbus_from,
    "crc16-ccitt-false": crc16_ccitt_false_from,
}

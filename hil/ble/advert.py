"""Legacy advertising payloads (at most 31 bytes): build one for a profile, parse one for bleak.

Pure stdlib so the scanner and the peripheral agree byte for byte without bumble's parser.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

MAX_LEGACY_ADV_BYTES = 31
_BASE_TAIL = "-0000-1000-8000-00805f9b34fb"

# AD types (Core Supplement, Part A, 1.x)
AD_FLAGS = 0x01
AD_UUID16_INCOMPLETE = 0x02
AD_UUID16_COMPLETE = 0x03
AD_UUID32_INCOMPLETE = 0x04
AD_UUID32_COMPLETE = 0x05
AD_UUID128_INCOMPLETE = 0x06
AD_UUID128_COMPLETE = 0x07
AD_NAME_SHORT = 0x08
AD_NAME_COMPLETE = 0x09
AD_TX_POWER = 0x0A
AD_SERVICE_DATA_16 = 0x16
AD_SERVICE_DATA_32 = 0x20
AD_SERVICE_DATA_128 = 0x21
AD_MANUFACTURER = 0xFF

# LE General Discoverable, BR/EDR not supported: what a BLE-only cushion advertises.
_FLAGS = 0x06


@dataclass(frozen=True, slots=True)
class ParsedAdvert:
    """What an advertising payload says, in bleak's terms (UUIDs as lower-case 128-bit text)."""

    local_name: str | None = None
    service_uuids: list[str] = field(default_factory=list)
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)
    tx_power: int | None = None


def uuid_text(little_endian: bytes) -> str:
    """Return the canonical 128-bit text of a 2-, 4- or 16-byte little-endian UUID."""
    if len(little_endian) == 2:
        return f"0000{int.from_bytes(little_endian, 'little'):04x}{_BASE_TAIL}"
    if len(little_endian) == 4:
        return f"{int.from_bytes(little_endian, 'little'):08x}{_BASE_TAIL}"
    if len(little_endian) == 16:
        return str(uuid.UUID(bytes=little_endian[::-1]))
    raise ValueError(f"a UUID has 2, 4 or 16 bytes, not {len(little_endian)}")


def short_uuid_bytes(text: str) -> bytes:
    """Return the shortest little-endian form of a UUID: 2 bytes on the SIG base, else 16."""
    canonical = str(uuid.UUID(text))
    if canonical.startswith("0000") and canonical.endswith(_BASE_TAIL):
        return bytes.fromhex(canonical[4:8])[::-1]
    return uuid.UUID(canonical).bytes[::-1]


def advertised_name(patterns: tuple[str, ...], fallback: str) -> str:
    """Return a name matching the first fnmatch pattern (``*`` -> ``-SIM``, ``?`` -> ``0``)."""
    if not patterns:
        return fallback
    pattern = patterns[0]
    name = pattern.replace("*", "-SIM").replace("?", "0")
    if not fnmatchcase(name, pattern):
        raise ValueError(
            f"cannot derive a device name from name pattern {pattern!r}; pass name= explicitly"
        )
    return name


def build_advertising_data(
    name: str,
    service_uuid: str,
    *,
    manufacturer_id: int | None = None,
    manufacturer_payload: bytes = b"",
) -> bytes:
    """Return flags + service UUID + manufacturer data + name, within 31 bytes.

    A name that does not fit is sent as a shortened local name; ValueError if even the rest
    does not fit.
    """
    uuid_bytes = short_uuid_bytes(service_uuid)
    uuid_type = AD_UUID16_COMPLETE if len(uuid_bytes) == 2 else AD_UUID128_COMPLETE
    head = _item(AD_FLAGS, bytes([_FLAGS])) + _item(uuid_type, uuid_bytes)
    if manufacturer_id is not None:
        head += _item(AD_MANUFACTURER, struct.pack("<H", manufacturer_id) + manufacturer_payload)
    room = MAX_LEGACY_ADV_BYTES - len(head) - 2
    encoded = name.encode()
    if room < 1:
        raise ValueError(
            f"advertising data for {name!r} needs {len(head) + 2 + len(encoded)} bytes, "
            f"more than {MAX_LEGACY_ADV_BYTES}: shorten the manufacturer payload"
        )
    if len(encoded) <= room:
        return head + _item(AD_NAME_COMPLETE, encoded)
    return head + _item(AD_NAME_SHORT, encoded[:room])


def parse_advertising_data(data: bytes) -> ParsedAdvert:
    """Parse AD structures (length, type, value); malformed tails are ignored as radios do."""
    name: str | None = None
    uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx_power: int | None = None
    i = 0
    while i < len(data):
        length = data[i]
        if length == 0 or i + 1 + length > len(data):
            break
        kind, value = data[i + 1], bytes(data[i + 2 : i + 1 + length])
        i += 1 + length
        if kind in (AD_NAME_COMPLETE, AD_NAME_SHORT):
            if name is None or kind == AD_NAME_COMPLETE:
                name = value.decode(errors="replace")
        elif kind in (AD_UUID16_COMPLETE, AD_UUID16_INCOMPLETE):
            uuids += [uuid_text(value[j : j + 2]) for j in range(0, len(value) - 1, 2)]
        elif kind in (AD_UUID32_COMPLETE, AD_UUID32_INCOMPLETE):
            uuids += [uuid_text(value[j : j + 4]) for j in range(0, len(value) - 3, 4)]
        elif kind in (AD_UUID128_COMPLETE, AD_UUID128_INCOMPLETE):
            uuids += [uuid_text(value[j : j + 16]) for j in range(0, len(value) - 15, 16)]
        elif kind == AD_MANUFACTURER and len(value) >= 2:
            manufacturer[int.from_bytes(value[:2], "little")] = value[2:]
        elif kind in _SERVICE_DATA_SIZES:
            size = _SERVICE_DATA_SIZES[kind]
            if len(value) >= size:
                service_data[uuid_text(value[:size])] = value[size:]
        elif kind == AD_TX_POWER and len(value) == 1:
            tx_power = struct.unpack("b", value)[0]
    return ParsedAdvert(name, uuids, manufacturer, service_data, tx_power)


_SERVICE_DATA_SIZES = {AD_SERVICE_DATA_16: 2, AD_SERVICE_DATA_32: 4, AD_SERVICE_DATA_128: 16}


def _item(kind: int, value: bytes) -> bytes:
    return bytes((len(value) + 1, kind)) + value

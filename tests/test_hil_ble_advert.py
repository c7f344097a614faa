"""Advertising payloads: built for a profile within 31 bytes, parsed back in bleak's terms."""

from __future__ import annotations

import pytest

from firmware_profiles import load_profile
from hil.ble.advert import (
    MAX_LEGACY_ADV_BYTES,
    advertised_name,
    build_advertising_data,
    parse_advertising_data,
    short_uuid_bytes,
    uuid_text,
)

NUS = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
FFE0 = "0000ffe0-0000-1000-8000-00805f9b34fb"


def test_sig_base_uuid_is_sent_as_16_bits_and_read_back_in_full() -> None:
    assert short_uuid_bytes(FFE0) == b"\xe0\xff"
    assert uuid_text(b"\xe0\xff") == FFE0
    assert len(short_uuid_bytes(NUS)) == 16
    assert uuid_text(short_uuid_bytes(NUS)) == NUS


def test_round_trip_name_uuid_and_manufacturer_data() -> None:
    data = build_advertising_data(
        "VB6-SIM", FFE0, manufacturer_id=0x1234, manufacturer_payload=b"\x01\x02"
    )
    parsed = parse_advertising_data(data)
    assert parsed.local_name == "VB6-SIM"
    assert parsed.service_uuids == [FFE0]
    assert parsed.manufacturer_data == {0x1234: b"\x01\x02"}
    assert len(data) <= MAX_LEGACY_ADV_BYTES


def test_long_name_is_shortened_to_fit_31_bytes() -> None:
    data = build_advertising_data("A-VERY-LONG-CUSHION-NAME", NUS)
    assert len(data) == MAX_LEGACY_ADV_BYTES
    parsed = parse_advertising_data(data)
    assert parsed.service_uuids == [NUS]
    assert parsed.local_name is not None
    assert "A-VERY-LONG-CUSHION-NAME".startswith(parsed.local_name)
    assert data[-len(parsed.local_name) - 1] == 0x08  # shortened local name


def test_too_much_manufacturer_data_is_refused() -> None:
    with pytest.raises(ValueError, match="31"):
        build_advertising_data("X", NUS, manufacturer_id=1, manufacturer_payload=bytes(10))


def test_malformed_tail_is_ignored() -> None:
    good = build_advertising_data("VB6-SIM", FFE0)
    parsed = parse_advertising_data(good + b"\x09\xff\x01")  # claims 9 bytes, has 2
    assert parsed.local_name == "VB6-SIM"


def test_name_from_pattern() -> None:
    assert advertised_name(("VB6*",), "fallback") == "VB6-SIM"
    assert advertised_name(("NU?",), "fallback") == "NU0"
    assert advertised_name((), "fallback") == "fallback"
    with pytest.raises(ValueError, match="name="):
        advertised_name(("[0-9]*",), "fallback")


@pytest.mark.parametrize("name", ["vb6-binary", "nus-text"])
def test_builtin_ble_profiles_fit(name: str) -> None:
    profile = load_profile(name)
    assert profile.ble is not None
    ble = profile.ble
    data = build_advertising_data(
        advertised_name(ble.name_patterns, name),
        ble.service_uuid,
        manufacturer_id=ble.manufacturer_id,
    )
    assert len(data) <= MAX_LEGACY_ADV_BYTES
    assert parse_advertising_data(data).service_uuids == [ble.service_uuid.lower()]

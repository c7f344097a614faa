"""Profile helpers the controller relies on, the JSON Schema export, and the lazy package import."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tomllib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_profiles import builtin_profiles, load_profile, profile_json_schema
from firmware_profiles.outputs import Frequency, Intensity

LP4 = load_profile("lp4-ascii")


@pytest.mark.parametrize(
    ("x", "level"),
    [(0.0, 0), (-0.2, 0), (0.05, 0), (0.1, 1), (0.3, 3), (0.35, 3), (0.7, 7), (0.99, 9),
     (1.0, 10), (1.7, 10)],
)
def test_intensity_to_device_rounds_down(x: float, level: int) -> None:
    assert LP4.intensity.to_device(x) == level


def test_intensity_nan_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        LP4.intensity.to_device(math.nan)


@given(st.floats(0, 1), st.integers(1, 1000))
def test_to_device_never_exceeds_the_request(x: float, top: int) -> None:
    intensity = Intensity(max=top)
    level = intensity.to_device(x)
    assert 0 <= level <= top
    assert intensity.from_device(level) <= x + 1e-9
    assert intensity.from_device(level + 1) > x - 1e-9 or level == top


def test_intensity_with_nonzero_off() -> None:
    intensity = Intensity(min=1, max=5)
    assert intensity.to_device(0) == 1
    assert intensity.to_device(1) == 5
    assert intensity.from_device(3) == 0.5


def test_frequency_table() -> None:
    freq = LP4.frequency
    assert freq is not None
    assert (freq.min_hz, freq.max_hz) == (12.0, 40.0)
    assert [freq.to_device(hz) for hz in (5, 12, 17.9, 18, 30, 40, 99)] == [1, 1, 1, 2, 3, 5, 5]
    assert freq.from_device(3) == 25.0
    assert freq.accepts(5) and not freq.accepts(6)
    with pytest.raises(ValueError, match="not in the table"):
        freq.from_device(6)


def test_frequency_linear_at_or_below() -> None:
    freq = Frequency(raw_min=100, raw_max=200, min_hz=10, max_hz=20)
    assert [freq.to_device(hz) for hz in (0, 10, 10.09, 10.1, 15, 19.99, 20, 30)] == [
        100, 100, 100, 101, 150, 199, 200, 200
    ]
    assert freq.from_device(150) == 15.0
    with pytest.raises(ValueError, match="outside"):
        freq.from_device(201)


@given(st.floats(1, 100))
def test_frequency_never_above_request_inside_range(hz: float) -> None:
    for name in builtin_profiles():
        freq = load_profile(name).frequency
        if freq is None:
            continue
        got = freq.from_device(freq.to_device(hz))
        assert got <= max(hz, freq.min_hz) + 1e-9
        assert freq.min_hz <= got <= freq.max_hz


def test_frequency_needs_one_form() -> None:
    with pytest.raises(ValueError, match="raw_min and raw_max"):
        Frequency(min_hz=10, max_hz=20)
    with pytest.raises(ValueError, match="not both"):
        Frequency.model_validate({"table": [{"raw": 1, "hz": 5}, {"raw": 2, "hz": 6}],
                                  "min_hz": 5})


def test_zones_heat_and_supports() -> None:
    assert [z.id for z in LP4.zones] == ["upper-left", "upper-right", "lower", "seat"]
    assert [z.kidney for z in LP4.zones] == [True, True, False, False]
    assert LP4.zones[3].covers == ("gluteal_left", "gluteal_right")
    assert LP4.zone_index("seat") == 3
    with pytest.raises(KeyError, match="no zone 'neck'"):
        LP4.zone_index("neck")
    assert LP4.heat is not None and LP4.heat.levels == 3
    assert LP4.supports("set_zone") and LP4.supports("keepalive") and LP4.supports("nak")
    assert not LP4.supports("set_all") and not LP4.supports("press.intensity_up")
    limits = LP4.limits
    assert (limits.watchdog_s, limits.keepalive_s, limits.max_update_hz) == (2.0, 0.5, 20)
    assert limits.auto_off_s == 1800 and limits.lease_s == 1.5 and limits.ack_every_command


def test_profile_is_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        LP4.limits.watchdog_s = 9  # type: ignore[misc]


# --- JSON Schema -------------------------------------------------------------------------
# A small validator for the keywords pydantic emits (no jsonschema dependency in the venv).


def _check(schema: dict[str, Any], value: Any, root: dict[str, Any], path: str) -> list[str]:
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _check(target, value, root, path)
    errors: list[str] = []
    if "anyOf" in schema and all(_check(s, value, root, path) for s in schema["anyOf"]):
        errors.append(f"{path}: matches no anyOf branch")
    one_of = schema.get("oneOf", [])
    if one_of and sum(not _check(s, value, root, path) for s in one_of) != 1:
        errors.append(f"{path}: does not match exactly one oneOf branch")
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
    kind = schema.get("type")
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return [f"{path}: not an integer"]
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return [f"{path}: not a number"]
    if kind == "null" and value is not None:
        return [f"{path}: not null"]
    if kind in kinds and not isinstance(value, kinds[kind]):
        return [f"{path}: not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in enum")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: below minimum")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: above maximum")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        errors.append(f"{path}: not above exclusiveMinimum")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: does not match pattern")
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{path}: too short")
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{path}: too few items")
    if isinstance(value, dict) and kind == "object":
        props = schema.get("properties", {})
        errors += [f"{path}.{k}: required" for k in schema.get("required", []) if k not in value]
        for key, item in value.items():
            if key in props:
                errors += _check(props[key], item, root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}.{key}: not allowed")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += _check(schema["additionalProperties"], item, root, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += _check(schema["items"], item, root, f"{path}[{i}]")
    return errors


def test_schema_is_json_and_describes_the_tables() -> None:
    schema = json.loads(json.dumps(profile_json_schema()))
    assert schema["title"] == "Cushion firmware profile"
    assert {"profile", "zone", "intensity", "limits", "frames", "replies"} <= set(
        schema["properties"]
    )
    assert set(schema["required"]) >= {"profile", "zone", "intensity", "limits", "frames"}


@pytest.mark.parametrize("name", sorted(builtin_profiles()))
def test_schema_validates_builtins(name: str) -> None:
    schema = profile_json_schema()
    data = tomllib.loads(builtin_profiles()[name].read_text())
    assert _check(schema, data, schema, "$") == []


def test_schema_rejects_a_bad_document() -> None:
    schema = profile_json_schema()
    data = tomllib.loads(builtin_profiles()["lp4-ascii"].read_text())
    data["profile"]["control"] = "wobbly"
    data["limits"]["watchdgo_s"] = 1
    data["frames"]["stop"]["layout"] = [{"const": 1, "field": "x"}]
    errors = _check(schema, data, schema, "$")
    assert any("control" in e for e in errors)
    assert any("watchdgo_s" in e for e in errors)
    assert any("frames.stop" in e for e in errors)


def test_import_is_lazy() -> None:
    code = "import sys, firmware_profiles; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

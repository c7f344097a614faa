"""docs/mqtt.md shows the JSON Schemas the payload models generate."""

from __future__ import annotations

import json
from pathlib import Path

from controller.mqtt_discovery import HaDeviceConfig
from controller.mqtt_topics import json_schemas

DOC = Path(__file__).parent.parent / "docs" / "mqtt.md"


def test_the_documented_schemas_are_the_models() -> None:
    text = DOC.read_text(encoding="utf-8")
    schemas = {**json_schemas(), "ha_discovery": HaDeviceConfig.model_json_schema()}
    for name, schema in schemas.items():
        assert f"### {name}\n\n```json\n{json.dumps(schema, indent=2)}\n```" in text, name

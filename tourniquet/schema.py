"""The playbook JSON Schema, generated from the models and the action registry.

Each step is a ``oneOf`` branch per action, with that action's arguments as the
schema of ``with``, so an editor completes argument names and flags typos.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tourniquet import registry
from tourniquet.engine.playbook import Playbook

__all__ = ["playbook_schema", "SCHEMA_PATH", "render_schema"]

SCHEMA_PATH = Path(__file__).parent / "schema" / "playbook.schema.json"


def _loosen(schema: dict[str, Any]) -> dict[str, Any]:
    """An argument may always be a ${{ … }} expression instead of a literal."""
    return {"anyOf": [schema, {"type": "string", "pattern": r"^\s*\$\{\{.*\}\}\s*$"}]}


def playbook_schema() -> dict[str, Any]:
    schema = Playbook.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://tourniquet.example/schema/playbook-v1.json"
    step = schema["$defs"]["Step"]
    branches = []
    for spec in registry.all_actions():
        arguments = spec.parameters.model_json_schema()
        definitions = arguments.pop("$defs", {})
        schema["$defs"].update(definitions)
        properties = {name: _loosen(value) for name, value in arguments.get("properties", {}).items()}
        branches.append({
            "if": {"properties": {"action": {"const": spec.name}}, "required": ["action"]},
            "then": {"properties": {"with": {
                "type": "object", "description": spec.summary, "properties": properties,
                "required": arguments.get("required", []), "additionalProperties": False,
            }}},
        })
    step["properties"]["action"]["enum"] = [spec.name for spec in registry.all_actions()]
    step["allOf"] = branches
    return schema


def render_schema() -> str:
    return json.dumps(playbook_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

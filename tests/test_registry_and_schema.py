"""The action registry is the single source: listing, schema and validator derive from signatures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tourniquet import registry
from tourniquet.schema import SCHEMA_PATH, render_schema


def test_committed_schema_is_current() -> None:
    """Regenerate with: tourniquet schema -o tourniquet/schema/playbook.schema.json"""
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema()


def test_schema_lists_every_action_with_its_arguments() -> None:
    schema = json.loads(render_schema())
    actions = schema["$defs"]["Step"]["properties"]["action"]["enum"]
    assert "directory.lock" in actions
    branches = {b["if"]["properties"]["action"]["const"]: b for b in schema["$defs"]["Step"]["allOf"]}
    lock_with = branches["directory.lock"]["then"]["properties"]["with"]
    assert lock_with["required"] == ["account"] and lock_with["additionalProperties"] is False


def test_changing_actions_declare_an_undo_that_exists() -> None:
    for spec in registry.all_actions():
        if spec.changes and spec.undo:
            assert registry.get(spec.undo) is not None, spec.name


def test_actions_command_documents_each_parameter() -> None:
    result = subprocess.run([sys.executable, "-m", "tourniquet.cli.main", "actions"], capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0
    assert "directory.lock  [changes, undo: directory.unlock]" in result.stdout
    assert "- ids: list[str]  uid, RPPS number" in result.stdout

"""A responder's broken playbooks: each problem named with file:line:col, field and what was expected.

None of them may produce a traceback, through the loader or through `tourniquet validate`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tourniquet.engine.loader import load_playbook, load_text
from tourniquet.errors import PlaybookErrors

REPO = Path(__file__).resolve().parents[1]

BASE = """\
playbook: t
version: 1
title: T
inputs:
  accounts: {type: "list[str]"}
steps:
  - id: resolve
    action: directory.resolve
    with: {ids: "${{ inputs.accounts }}"}
  - id: lock
    action: directory.lock
    for_each: "${{ steps.resolve.accounts }}"
    with: {account: "${{ item }}"}
"""

CASES = {
    "bad YAML": (
        BASE.replace("  - id: lock", "  - id: lock: x"),
        "pb.yaml:10:13: invalid YAML: mapping values are not allowed here"),
    "tab indentation": (
        BASE.replace("  - id: lock", "\t- id: lock"),
        "pb.yaml:10:1: invalid YAML: found character '\\t' that cannot start any token"),
    "unknown action": (
        BASE.replace("directory.lock", "directory.lokc"),
        "pb.yaml:11:13: steps[1].action: unknown action 'directory.lokc', did you mean 'directory.lock'?"),
    "unknown argument": (
        BASE.replace('{account: "${{ item }}"}', '{account: "${{ item }}", force: true}'),
        "pb.yaml:13:36: steps[1].with.force: unknown argument 'force' for directory.lock (expected: account)"),
    "missing argument": (
        BASE.replace('    with: {account: "${{ item }}"}\n', ""),
        "pb.yaml:11:13: steps[1].action: missing argument 'account' for directory.lock"),
    "bad version": (
        BASE.replace("version: 1", "version: 2"),
        "pb.yaml:2:10: version: Input should be 1, got 2"),
    "undeclared input": (
        BASE.replace("inputs.accounts", "inputs.acounts"),
        "pb.yaml:9:17: steps[0].with.ids: input 'acounts' is not declared (inputs: accounts)"),
    "forward reference": (
        BASE.replace("${{ inputs.accounts }}", "${{ steps.lock.count }}"),
        "pb.yaml:9:17: steps[0].with.ids: step 'lock' runs later: a step can only read the results of earlier steps"),
    "duplicate step id": (
        BASE.replace("id: lock", "id: resolve"),
        "pb.yaml:10:9: steps[1].id: duplicate step id 'resolve' (first used by steps[0])"),
    "misspelt field": (
        BASE.replace("    for_each:", "    for_eac:"),
        "pb.yaml:12:5: steps[1].for_eac: unknown field 'for_eac', did you mean 'for_each'?"),
    "item outside for_each": (
        BASE.replace("${{ inputs.accounts }}", "${{ item }}"),
        "pb.yaml:9:17: steps[0].with.ids: 'item' exists only inside a step with for_each"),
    "function not allowed": (
        BASE.replace("${{ inputs.accounts }}", "${{ open('/etc/passwd') }}"),
        "pb.yaml:9:17: steps[0].with.ids: unknown function 'open'"),
    "private attribute": (
        BASE.replace("${{ inputs.accounts }}", "${{ inputs.__class__ }}"),
        "pb.yaml:9:17: steps[0].with.ids: private attribute '__class__' is not allowed"),
    "unknown result field": (
        BASE.replace("steps.resolve.accounts", "steps.resolve.acounts"),
        "pb.yaml:12:15: steps[1].for_each: directory.resolve result has no 'acounts' (it has: accounts, not_found)"),
    "literal of the wrong type": (
        BASE.replace('{ids: "${{ inputs.accounts }}"}', "{ids: 42}"),
        "pb.yaml:9:17: steps[0].with.ids: bad value for 'ids' of directory.resolve: Input should be a valid list"),
    "unknown input type": (
        BASE.replace('{type: "list[str]"}', '{type: "list[dict]"}'),
        "pb.yaml:5:20: inputs.accounts.type: Input should be 'str', 'int', 'bool', 'datetime', 'duration', 'list[str]' or 'list[int]', got 'list[dict]'"),
    "default of the wrong type": (
        BASE.replace('{type: "list[str]"}', '{type: "list[str]"}\n  n: {type: int, default: abc}'),
        "pb.yaml:6:27: inputs.n.default: bad value for input 'n' (int): invalid literal for int() with base 10: 'abc'"),
    "duplicate key": (
        BASE.replace("title: T\n", "title: T\ntitle: U\n"),
        "pb.yaml:4:1: duplicate key 'title'"),
    "not a mapping": ("- a\n- b\n", "pb.yaml:1:1: a playbook is a mapping"),
    "empty file": ("", "pb.yaml:1:1: the file is empty"),
    "no steps": ("playbook: t\nversion: 1\ntitle: T\n", "pb.yaml:1:1: missing required field 'steps'"),
    "unclosed expression": (
        BASE.replace("${{ inputs.accounts }}", "${{ inputs.accounts "),
        "pb.yaml:9:17: steps[0].with.ids: unclosed '${{' in '${{ inputs.accounts '"),
    "unknown root name": (
        BASE.replace("${{ inputs.accounts }}", "${{ secrets.x }}"),
        "pb.yaml:9:17: steps[0].with.ids: name 'secrets' is not defined"),
    "unknown undo action": (
        BASE.replace("    for_each:", "    undo: directory.nope\n    for_each:"),
        "pb.yaml:12:11: steps[1].undo: unknown undo action 'directory.nope'"),
    "bad step id": (
        BASE.replace("id: lock", "id: Lock-1"),
        "pb.yaml:10:9: steps[1].id: a step id is lowercase letters, digits and _, starting with a letter, got 'Lock-1'"),
    "bad on_error": (
        BASE.replace("    for_each:", "    on_error: ignore\n    for_each:"),
        "pb.yaml:12:15: steps[1].on_error: Input should be 'fail' or 'continue', got 'ignore'"),
    "too many retries": (
        BASE.replace("    for_each:", "    retries: 99\n    for_each:"),
        "pb.yaml:12:14: steps[1].retries: Input should be less than or equal to 10, got 99"),
    "step reads its own result": (
        BASE.replace("${{ steps.resolve.accounts }}", "${{ steps.lock.results }}"),
        "pb.yaml:12:15: steps[1].for_each: step 'lock' refers to its own result"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_broken_playbook_is_reported_with_its_place(name: str) -> None:
    text, expected = CASES[name]
    with pytest.raises(PlaybookErrors) as raised:
        load_text(text, "pb.yaml")
    assert str(raised.value).splitlines()[0].startswith(expected)
    for error in raised.value.errors:
        assert error.location is not None and error.location.file == "pb.yaml"


def test_all_problems_are_reported_at_once() -> None:
    text = BASE.replace("directory.lock", "directory.lokc").replace("inputs.accounts", "inputs.acounts")
    with pytest.raises(PlaybookErrors) as raised:
        load_text(text, "pb.yaml")
    assert len(raised.value.errors) == 2


def test_shipped_playbooks_are_valid() -> None:
    for path in sorted((REPO / "playbooks").glob("*.yaml")):
        if path.read_text().lstrip().startswith("playbook:"):
            load_playbook(path)


def test_validate_command_prints_locations_and_no_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(CASES["unknown argument"][0])
    good = REPO / "playbooks" / "credential-misuse.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "tourniquet.cli.main", "validate", str(good), str(broken)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert f"{broken}:13:36: steps[1].with.force: unknown argument 'force'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert f"{good}: ok" in result.stdout


def test_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(PlaybookErrors) as raised:
        load_playbook(tmp_path / "nope.yaml")
    assert str(raised.value) == f"{tmp_path / 'nope.yaml'}:1:1: file not found"


def test_the_documented_playbook_example_is_valid() -> None:
    """The example of docs/how-to/write-playbook.md must stay a playbook that loads."""
    text = (REPO / "docs" / "how-to" / "write-playbook.md").read_text(encoding="utf-8")
    start = text.index("```yaml\nplaybook: credential-misuse") + len("```yaml\n")
    load_text(text[start:text.index("```", start)], "docs/how-to/write-playbook.md")

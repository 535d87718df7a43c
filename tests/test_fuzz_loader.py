"""A playbook author makes every mistake at once: the loader must always answer file:line, never a traceback.

Several hundred mutants of playbooks/credential-misuse.yaml (keys deleted, duplicated or
renamed, values of the wrong type, broken indentation, injected expressions, random
bytes, truncation) go through the loader. Each either loads, or fails with a
PlaybookErrors whose every error names the file and a line inside it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tourniquet.engine.loader import LoadedPlaybook, load_playbook
from tourniquet.errors import PlaybookErrors

SOURCE = Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml"
TEXT = SOURCE.read_text(encoding="utf-8")
DATA = yaml.safe_load(TEXT)
MUTANTS = 320

INJECTIONS = [
    "${{ __import__('os').system('id') }}", "${{ inputs.__class__ }}", "${{ steps.resolve.accounts[0]._x }}",
    "${{ item }}", "${{ steps.lock.results }}", "${{ incident.nope }}", "${{ open('/etc/passwd') }}",
    "${{ len( }}", "${{ }}", "${{ inputs.accounts ", "${{ lambda: 1 }}", "${{ [x for x in inputs.accounts] }}",
    "${{ 'a' * 10**9 }}", "${{ 9**9**9 }}", "${{ now().year }}", "${{ inputs.accounts[99999999999999999999] }}",
    "${{ {'a': 1}.a }}", "${{ steps }}", "${{ limits.max_accounts + 'x' }}", "*)(uid=*", "\x00", "\ud7ff",
]
TAGGED = ["!!int abc", "!!float x", "!!bool maybe", "!!timestamp nope", "!!null x", "!!binary ???", "!!set [a]",
          "!!omap [a]", "!!pairs [1]", "!!str {a: 1}", "!!python/name:os.system", "!!map [1]", "!!seq {a: 1}",
          "1" + "0" * 5000, "0x" + "f" * 5000, "1e999999", "!<tag:yaml.org,2002:int> x", "!local x", "&a [*a]"]
ODD_VALUES: list[Any] = [None, 0, -1, 10**30, 3.5, float("nan"), True, "", "x" * 5000, [], {}, [[[]]],
                         {"a": {"b": {"c": None}}}, ["${{ item }}"], "1h", "-30d", "list[str]", "rollback"]
RANDOM_KEYS = ["for_eac", "With", "steps ", "id", "action", "if", "undo", "timeout", "retries", "x-y", "1",
               "limits", "protected", "max_accounts", "on_failure", "<<", "?", "inputs"]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, path + (index,))
    return found


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def _structural(rng: random.Random) -> str:
    data = yaml.safe_load(TEXT)
    for _ in range(rng.randint(1, 4)):
        paths = [p for p in _paths(data) if p]
        path = rng.choice(paths)
        parent, last = _parent(data, path), path[-1]
        kind = rng.choice(["delete", "retype", "rename", "inject", "duplicate", "wrap", "add"])
        if kind == "delete":
            del parent[last]
        elif kind == "retype":
            parent[last] = rng.choice(ODD_VALUES)
        elif kind == "rename" and isinstance(parent, dict):
            parent[rng.choice(RANDOM_KEYS) + rng.choice(["", "_", "2"])] = parent.pop(last)
        elif kind == "inject":
            parent[last] = rng.choice(INJECTIONS)
        elif kind == "duplicate" and isinstance(parent, list):
            parent.append(parent[last])
        elif kind == "wrap":
            parent[last] = rng.choice([[parent[last]], {"value": parent[last]}])
        elif isinstance(parent, dict):
            parent[rng.choice(RANDOM_KEYS)] = rng.choice(ODD_VALUES + INJECTIONS)
    return yaml.safe_dump(data, sort_keys=rng.random() < 0.5, allow_unicode=True)


def _textual(rng: random.Random) -> str:
    lines = TEXT.splitlines()
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(lines))
        kind = rng.choice(["indent", "dedent", "dup", "drop", "swap", "colon", "tab", "anchor", "truncate", "key",
                           "tag", "tag"])
        if kind == "tag" and ": " in lines[index]:
            key = lines[index].split(": ", 1)[0]
            lines[index] = key + ": " + rng.choice(TAGGED)
        elif kind == "indent":
            lines[index] = " " * rng.randint(1, 5) + lines[index]
        elif kind == "dedent":
            lines[index] = lines[index].lstrip()
        elif kind == "dup":
            lines.insert(index, lines[index])  # duplicate keys, duplicate steps
        elif kind == "drop":
            del lines[index]
        elif kind == "swap":
            other = rng.randrange(len(lines))
            lines[index], lines[other] = lines[other], lines[index]
        elif kind == "colon":
            lines[index] = lines[index].replace(":", rng.choice(["", "::", ": :", " -"]), 1)
        elif kind == "tab":
            lines[index] = "\t" + lines[index]
        elif kind == "anchor":
            lines[index] += rng.choice([" &a", " *a", " !!python/object:os.system", " !!binary", " {", " [", " |", " '"])
        elif kind == "truncate":
            lines = lines[:index]
            lines.append(TEXT.splitlines()[index][: rng.randint(0, 20)])
        else:
            lines.insert(index, rng.choice(["<<: *x", "? [a, b]\n: c", "steps: {}", "playbook: [", "- - -", "%YAML 9.9",
                                            "--- !!map", "...", "&a [*a]", "x: !!timestamp nope"]))
    return "\n".join(lines) + "\n"


def _bytes(rng: random.Random) -> bytes:
    data = bytearray(TEXT.encode())
    for _ in range(rng.randint(1, 12)):
        position = rng.randrange(len(data))
        data[position:position + rng.randint(0, 3)] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 6)))
    return bytes(data)


_ALIAS_BOMB = (b"a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n" + b"".join(
    f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]\n".encode() for i in range(1, 10)) + TEXT.encode())


def _special(rng: random.Random) -> bytes:
    samples = [b"", b"\n", b"---\n...\n", b"[]", b"42", b"~", b"\xff\xfe\x00", b"\xef\xbb\xbf" + TEXT.encode(),
               TEXT.encode("utf-16"), b"a: &a [*a, *a]\n", b"[" * 1500, b"{a: " * 1500, b"- " * 1500,
               b"playbook: x\nversion: 1\ntitle: t\nsteps: [{id: a, action: flow.note, with: {message: '" +
               b"${{ x" * 50 + b"'}}]\n", TEXT.encode().replace(b"  ", b"\t"), TEXT.encode() * 3]
    return samples[rng.randrange(len(samples))]


GENERATORS: list[Callable[[random.Random], str | bytes]] = [_structural, _textual, _bytes, _special]


def _mutant(seed: int) -> bytes:
    rng = random.Random(seed)
    produced = GENERATORS[seed % len(GENERATORS)](rng) if seed % 17 else _special(rng)
    return produced if isinstance(produced, bytes) else produced.encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("chunk", range(8))
def test_every_mutant_loads_or_fails_with_file_and_line(chunk: int, tmp_path: Path) -> None:
    outcomes = {"loaded": 0, "rejected": 0}
    for seed in range(chunk, MUTANTS, 8):
        text = _mutant(seed)
        path = tmp_path / f"mutant-{seed}.yaml"
        path.write_bytes(text)
        try:
            loaded = load_playbook(path)
        except PlaybookErrors as exc:
            outcomes["rejected"] += 1
            lines = max(1, text.count(b"\n") + 1)
            for error in exc.errors:
                assert error.location is not None, f"seed {seed}: no location for {error.message!r}"
                assert error.location.file == str(path), f"seed {seed}: {error}"
                assert 1 <= error.location.line <= lines, f"seed {seed}: line out of range in {error}"
                assert str(error).startswith(f"{path}:{error.location.line}:"), f"seed {seed}: {error}"
        except Exception as exc:  # the property under test: nothing else ever escapes
            pytest.fail(f"seed {seed}: {type(exc).__name__}: {exc}\n--- mutant ---\n{text[:2000]!r}")
        else:
            assert isinstance(loaded, LoadedPlaybook)
            outcomes["loaded"] += 1
    assert sum(outcomes.values()) == len(range(chunk, MUTANTS, 8))


def test_mutants_are_varied_enough() -> None:
    """The fuzzer must produce both loadable and broken playbooks, or it proves nothing."""
    loaded = rejected = 0
    for seed in range(MUTANTS):
        try:
            load_playbook_text(_mutant(seed))
            loaded += 1
        except PlaybookErrors:
            rejected += 1
    assert loaded >= 3 and rejected >= 100, (loaded, rejected)


def load_playbook_text(data: bytes) -> LoadedPlaybook:
    from tourniquet.engine.loader import load_text

    return load_text(data.decode("utf-8", "replace"), "mutant.yaml")

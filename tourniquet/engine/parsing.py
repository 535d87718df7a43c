"""Read a playbook file as hostile input and parse its YAML into plain data, every node with its position.

Shared by the playbook and hygiene-playbook loaders, so both get the same defences (a size cap,
flow-nesting bombs refused before PyYAML spends seconds on them, alias bombs stopped at
``MAX_NODES``, bad tags, recursion, text that is not valid UTF-8) and the same located messages: every
problem is a :class:`~tourniquet.errors.PlaybookErrors` naming ``file:line:column``, never a yaml
traceback. :func:`dotted`, :func:`nearest` and :func:`suggest` write a node's path, position and
the likely intended name as an author reads them.

May import: PyYAML, ``untrusted``, ``tourniquet.errors``. Imported by: ``engine.loader``,
``engine.crosscheck``, ``hygiene.loader``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tourniquet.errors import Location, PlaybookError, PlaybookErrors
from tourniquet.untrusted import BoundedLoader, TooLarge, read_bounded, text_problem

__all__ = ["ParsedYaml", "parse_yaml", "read_text", "dotted", "nearest", "suggest", "Path_", "MAX_PLAYBOOK_BYTES",
           "MAX_FLOW_DEPTH"]

#: A playbook is a few kilobytes; ``validate`` reads no more than this of any file.
MAX_PLAYBOOK_BYTES = 1 << 20

Path_ = tuple[str | int, ...]


class _Builder:
    """Turns a composed YAML node tree into plain data, remembering each node's position."""

    #: More nodes than any real playbook has: an alias bomb ("billion laughs") stops here, not after hours.
    MAX_NODES = 20_000

    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.count = 0
        self.marks: dict[Path_, Location] = {}
        self.key_marks: dict[Path_, Location] = {}
        self.errors: list[PlaybookError] = []

    def mark(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def construct(self, node: yaml.Node, path: Path_) -> Any:
        """A scalar's value; a tag that cannot read it (``!!int abc``, ``!!timestamp x``) is an error here."""
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
            shown = node.value if isinstance(node, yaml.ScalarNode) else node.id
            tag = node.tag.rsplit(":", 1)[-1]
            self.errors.append(PlaybookError(
                f"cannot read {str(shown)[:60]!r} as {tag} ({type(exc).__name__}: {str(exc)[:80]})",
                self.mark(node), dotted(path)))
            return None
        problem = text_problem(value) if isinstance(value, str) else None
        if problem is not None:
            self.errors.append(PlaybookError(f"not valid text: {problem}", self.mark(node), dotted(path)))
            return None
        return value

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > self.MAX_NODES:
            raise PlaybookErrors([PlaybookError(
                f"more than {self.MAX_NODES} YAML nodes (aliases expanding too much?)", self.mark(node), dotted(path))])
        self.marks[path] = self.mark(node)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.construct(key_node, path)
                if not isinstance(key, str):
                    key = str(key)
                if key in result:
                    self.errors.append(
                        PlaybookError(f"duplicate key {key!r}", self.mark(key_node), dotted(path))
                    )
                    continue
                self.key_marks[path + (key,)] = self.mark(key_node)
                result[key] = self.build(value_node, path + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (index,)) for index, item in enumerate(node.value)]
        return self.construct(node, path)


def dotted(path: Path_) -> str:
    """A node's path as an author reads it: ``steps[2].with.account``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def nearest(marks: dict[Path_, Location], path: Path_) -> Location | None:
    """Where ``path`` is in the file, or its closest ancestor that has a position."""
    probe = tuple(path)
    while probe:
        if probe in marks:
            return marks[probe]
        probe = probe[:-1]
    return marks.get(())


def suggest(word: str, choices: list[str]) -> str:
    """``, did you mean 'x'?`` for the closest choice, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f", did you mean {close[0]!r}?" if close else ""


def read_text(path: str | Path) -> str:
    """A playbook file's text; a missing or unreadable file is a located PlaybookErrors, not a traceback."""
    file = _printable(str(path))
    try:
        data = read_bounded(path, MAX_PLAYBOOK_BYTES, "playbook")
    except FileNotFoundError:
        raise PlaybookErrors([PlaybookError("file not found", Location(file, 1, 1))]) from None
    except TooLarge as exc:
        raise PlaybookErrors([PlaybookError(f"{exc} (MAX_PLAYBOOK_BYTES)", Location(file, 1, 1))]) from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PlaybookErrors([PlaybookError(f"cannot read: {reason}", Location(file, 1, 1))]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PlaybookErrors([PlaybookError(f"not UTF-8 text: byte {data[exc.start]:#04x}", Location(file, line, column))
                              ]) from None


def _printable(name: str) -> str:
    """A file name as given, with what cannot be printed escaped (a name is hostile input too)."""
    return name if text_problem(name) is None else ascii(name)[1:-1]


#: Deeper ``[``/``{`` nesting than any playbook needs; PyYAML's scanner slows down quadratically past it.
MAX_FLOW_DEPTH = 64


def _check_flow_depth(text: str, file: str) -> None:
    """Refuse absurd ``[[[[…`` nesting before PyYAML spends seconds on it (quoted text and comments skipped)."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        quote = ""
        for column, char in enumerate(line, start=1):
            if quote:
                if char == quote:
                    quote = ""
            elif char in "'\"":
                quote = char
            elif char == "#" and (column == 1 or line[column - 2] in " \t"):
                break
            elif char in "[{":
                depth += 1
                if depth > MAX_FLOW_DEPTH:
                    raise PlaybookErrors([PlaybookError(
                        f"invalid YAML: brackets nested more than {MAX_FLOW_DEPTH} levels deep",
                        Location(file, number, column))])
            elif char in "]}":
                depth = max(0, depth - 1)


@dataclass
class ParsedYaml:
    """Plain data from a YAML file, with the position of every node and key."""

    data: Any
    marks: dict[Path_, Location]
    key_marks: dict[Path_, Location]
    errors: list[PlaybookError]


def parse_yaml(text: str, file: str) -> ParsedYaml:
    """Safe YAML → data + marks; every YAML problem becomes a located :class:`PlaybookErrors`.

    Shared by the playbook and hygiene-playbook loaders, so both get the same defences
    (flow-nesting bombs, bad tags, recursion) and the same messages.
    """
    if len(text) > MAX_PLAYBOOK_BYTES:
        raise PlaybookErrors([PlaybookError(f"{len(text)} characters: more than MAX_PLAYBOOK_BYTES "
                                            f"({MAX_PLAYBOOK_BYTES})", Location(file, 1, 1))])
    _check_flow_depth(text, file)
    try:
        loader = BoundedLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                raise PlaybookErrors([PlaybookError("the file is empty", Location(file, 1, 1))])
            builder = _Builder(file, loader)
            data = builder.build(root, ())
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise PlaybookErrors([PlaybookError(f"invalid YAML: {problem}", location)]) from None
    except yaml.YAMLError as exc:
        raise PlaybookErrors([PlaybookError(f"invalid YAML: {exc}", Location(file, 1, 1))]) from None
    except (RecursionError, MemoryError):
        raise PlaybookErrors([PlaybookError("YAML nested too deeply", Location(file, 1, 1))]) from None
    return ParsedYaml(data, builder.marks, builder.key_marks, list(builder.errors))

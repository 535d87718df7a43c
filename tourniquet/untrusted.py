"""Reading what comes from outside — playbooks, site files, ids — with bounds, as valid text.

Why here: the playbook loader (engine) and the site configuration (a shared module) read YAML
written by people and tools Tourniquet does not control. Both get the same defences: a file is
read up to a set size and never past it (``validate /dev/zero`` stops at once), YAML nesting and
node counts are bounded while the document is composed (not after), and text that is not valid
Unicode (a lone surrogate from a ``"\\ud800"`` escape, a control character) is named, not written.
"""

from __future__ import annotations

import stat
import unicodedata
from pathlib import Path
from typing import Any

import yaml

from tourniquet.errors import PlaybookError
from tourniquet.model import INCIDENT_ID  # letters, digits and . _ : -, starting with a letter or digit

__all__ = ["text_problem", "check_incident_id", "INCIDENT_ID", "MAX_INCIDENT_ID", "read_bounded", "BoundedLoader", "expanded_size", "TooLarge", "MAX_YAML_NODES",
           "MAX_YAML_DEPTH"]

#: YAML nodes in one document: more than any playbook or site file has.
MAX_YAML_NODES = 20_000
#: Nesting of mappings and sequences in one document.
MAX_YAML_DEPTH = 64


#: The longest incident id: it names a folder and a lock, and goes into ticket searches and titles.
MAX_INCIDENT_ID = 128


class TooLarge(ValueError):
    """A file, a document or a value above its bound; the message names the bound."""


def text_problem(value: str) -> str | None:
    """Why ``value`` is not text that can be written anywhere (None when it is).

    A byte that was not UTF-8 arrives as a surrogate escape (U+DC80–U+DCFF, as Python decodes
    command-line arguments), a YAML or JSON ``\\ud800`` escape as a lone surrogate: neither can
    be encoded, so neither may reach the journal, a directory filter or Prefect's API.
    """
    for index, char in enumerate(value):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            return f"byte {code - 0xDC00:#04x} at position {index + 1} is not UTF-8"
        if 0xD800 <= code <= 0xDFFF:
            return f"lone surrogate U+{code:04X} at position {index + 1} is not a character"
        if char not in "\n\t\r" and unicodedata.category(char) == "Cc":
            return f"control character U+{code:04X} at position {index + 1}"
    return None


def check_incident_id(value: str) -> str:
    """An incident id from anywhere (command line, form, flow parameter): returned as is, or a clear error.

    The one check every command and every path built from an id goes through (``Site.incident_dir``
    calls it too): only letters, digits and ``. _ : -``, at most :data:`MAX_INCIDENT_ID` characters,
    so an id can never name a folder outside ``evidence_dir`` or ``state_dir``.
    """
    if not isinstance(value, str):
        raise PlaybookError(f"incident id must be text, not {type(value).__name__}", path="incident")
    problem = text_problem(value)
    if problem is not None:
        raise PlaybookError(f"incident id {_shown(value)} is not valid text: {problem}", path="incident")
    if not INCIDENT_ID.match(value):
        raise PlaybookError(f"incident id {_shown(value)} must be letters, digits and . _ : - (at most "
                            f"{MAX_INCIDENT_ID}, starting with a letter or digit)", path="incident")
    return value


def _shown(value: str, limit: int = 60) -> str:
    """The id as an error message names it: escaped, and cut (a 5,000-character id is not echoed whole)."""
    text = ascii(value)
    return text if len(text) <= limit else text[:limit] + "…' (" + str(len(value)) + " characters)"


def read_bounded(path: str | Path, limit: int, what: str) -> bytes:
    """At most ``limit`` bytes of a regular file: :class:`TooLarge` above it, ValueError for a device, pipe or
    folder (never opened: a pipe would block, ``/dev/zero`` never ends), OSError if it cannot be read."""
    file = Path(path)
    mode = file.stat().st_mode
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a device, pipe or socket"
        raise ValueError(f"not a regular file ({kind}): a {what} is a file")
    with file.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"larger than {limit} bytes, the most a {what} may be")
    return data


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, stopping at :data:`MAX_YAML_NODES` nodes or :data:`MAX_YAML_DEPTH` levels.

    Counted while composing: a one-line list of a million items is refused after the first
    20,000, without building the rest. Anchors and aliases are counted where they are expanded
    (:func:`expanded_size`), as an alias only points at a node composed once.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise yaml.MarkedYAMLError(problem=f"more than MAX_YAML_NODES ({MAX_YAML_NODES}) YAML nodes",
                                       problem_mark=self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.MarkedYAMLError(problem=f"nested more than MAX_YAML_DEPTH ({MAX_YAML_DEPTH}) levels",
                                           problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def expanded_size(value: Any, limit: int) -> int:
    """Nodes of a loaded value with every alias expanded, counting no further than ``limit`` (iterative)."""
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return count

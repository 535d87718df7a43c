"""Read-ahead: the entries of a chunk of accounts, read in one search instead of one operation each.

The engine runs a step's accounts in chunks; around each chunk it opens
``with directory.read_ahead(dns):``. Inside, the first read of one of those entries fetches all of
them with the same attributes in one search (``(|(entryDN=…)(entryDN=…)…)``), and the first
``groups_of`` fetches the whole chunk's groups in one search (matched values). The rule that keeps
it honest: **inside the block, an entry is read from the server at most once until this client
writes it** — a write forgets the entry (or, with the post-read control, replaces it with what the
server returned after the write), so a read-back is never served from before the change. Outside a
block nothing is cached.

Why this is safe for containment: the chunk's accounts are held by this run (no other run changes
them), and a chunk lasts a fraction of a second, the time one read per account would have taken.
"""

from __future__ import annotations

from collections.abc import Iterable

from tourniquet.connectors.directory.flavors import Attributes
from tourniquet.model import canonical_dn

__all__ = ["ReadAhead", "names_key"]

ALL = frozenset({"*", "+"})


def names_key(attributes: Iterable[str]) -> frozenset[str]:
    """The attribute names of a read, lower-cased, "1.1" (no attributes) left out."""
    return frozenset(a.lower() for a in attributes if a != "1.1")


def _covers(fetched: frozenset[str], wanted: frozenset[str]) -> bool:
    if ALL <= fetched:
        return True
    return not (wanted & ALL) and wanted <= fetched


def _subset(attributes: Attributes, wanted: frozenset[str]) -> Attributes:
    if wanted & ALL:
        return dict(attributes)
    return {name: values for name, values in attributes.items() if name.lower() in wanted}


class ReadAhead:
    """What one thread has read during one chunk: entries by canonical DN, and the chunk's groups."""

    def __init__(self, dns: Iterable[str]) -> None:
        self.listed: dict[str, str] = {canonical_dn(dn): dn for dn in dns}
        self._entries: dict[str, tuple[frozenset[str], Attributes | None]] = {}
        self._groups: dict[str, list[str]] | None = None
        self.batched_reads = 0

    def is_listed(self, dn: str) -> bool:
        return canonical_dn(dn) in self.listed

    def get(self, dn: str, attributes: Iterable[str]) -> tuple[bool, Attributes | None]:
        """(found, attributes): found is False when the entry must be read from the server."""
        cached = self._entries.get(canonical_dn(dn))
        wanted = names_key(attributes)
        if cached is None or not _covers(cached[0], wanted):
            return False, None
        return True, None if cached[1] is None else _subset(cached[1], wanted)

    def missing(self, attributes: Iterable[str]) -> list[str]:
        """Listed entries not read yet with (at least) these attributes."""
        wanted = names_key(attributes)
        return [dn for key, dn in self.listed.items()
                if key not in self._entries or not _covers(self._entries[key][0], wanted)]

    def put(self, dn: str, attributes: Iterable[str], values: Attributes | None) -> None:
        """What the server returned for ``dn`` (None: no such entry) when asked for ``attributes``."""
        self._entries[canonical_dn(dn)] = (names_key(attributes), values)

    def forget(self, dn: str) -> None:
        self._entries.pop(canonical_dn(dn), None)

    # -- groups

    @property
    def groups_loaded(self) -> bool:
        return self._groups is not None

    def put_groups(self, groups: dict[str, list[str]]) -> None:
        """Groups per listed DN (every listed DN gets an entry: [] when it is in none)."""
        self._groups = {key: sorted(groups.get(key, [])) for key in self.listed}

    def groups(self, dn: str) -> list[str] | None:
        if self._groups is None:
            return None
        found = self._groups.get(canonical_dn(dn))
        return None if found is None else list(found)

    def forget_groups(self, dn: str) -> None:
        if self._groups is not None:
            self._groups.pop(canonical_dn(dn), None)

"""Counting people once across regions, compactly: millions of people fit in a few hundred megabytes.

A person is matched across regions by the keyed hash of their national identifier (INS / NIR) the
region wrote, under one key; a person without a usable hash is counted once per region where seen.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Sequence

__all__ = ["PeopleCounter", "RegionRows", "hash_bytes"]


class PeopleCounter:
    """People across regions: once per (key check, national hash) when they have one, else once per region.

    Memory, for millions of people: per person matched, its 32-byte hash and one integer (category bits in
    the low 32 bits, region bits above); per person without a hash, 4 bytes. A region's rows are added only
    once its files were read whole and found sealed (:class:`RegionRows`, about 36 bytes a person).
    """

    SHIFT = 32

    def __init__(self) -> None:
        self.categories: list[str] = []
        #: key check → hash → category bits | region bits << SHIFT
        self.people: dict[str, dict[bytes, int]] = {}
        #: category bits of each person without a usable hash, per region
        self.unmatched: dict[str, array[int]] = {}
        self.regions: list[str] = []

    @property
    def keys(self) -> set[str]:
        return set(self.people)

    def bits(self, categories: Sequence[str]) -> int:
        value = 0
        for category in categories:
            if category not in self.categories:
                if len(self.categories) == self.SHIFT:
                    raise ValueError(f"more than {self.SHIFT} data categories")
                self.categories.append(category)
            value |= 1 << self.categories.index(category)
        return value

    def add_region(self, name: str, key: str | None, rows: "RegionRows") -> None:
        index = len(self.regions)
        self.regions.append(name)
        region_bit = 1 << (self.SHIFT + index)
        unmatched = self.unmatched.setdefault(name, array("I"))
        unmatched.extend(rows.unmatched)
        if key is None:  # no key: nothing it hashed can be matched with anyone
            unmatched.extend(rows.bits)
            return
        people = self.people.setdefault(key, {})
        digests = rows.digests
        for position, bits in enumerate(rows.bits):
            digest = bytes(digests[32 * position:32 * position + 32])
            people[digest] = people.get(digest, 0) | bits | region_bit

    def largest_group(self) -> int:
        """The most people matched under one key: distinct people for sure (a lower bound of the total)."""
        return max((len(people) for people in self.people.values()), default=0)

    def totals(self) -> tuple[int, dict[str, int], int, int]:
        """(people, people per category, people seen in several regions, people without a usable hash)."""
        counts = [0] * len(self.categories)
        several = matched = unmatched = 0
        low = (1 << self.SHIFT) - 1

        def add(bits: int, people: int) -> None:
            for index in range(len(counts)):
                if bits >> index & 1:
                    counts[index] += people

        for group in self.people.values():
            matched += len(group)
            for value, people in Counter(group.values()).items():  # few distinct values: counted in C
                regions = value >> self.SHIFT
                several += people if regions & (regions - 1) else 0
                add(value & low, people)
        for bits_of in self.unmatched.values():
            unmatched += len(bits_of)
            for bits, people in Counter(bits_of).items():
                add(bits, people)
        by_category = {category: counts[i] for i, category in enumerate(self.categories) if counts[i]}
        return matched + unmatched, dict(sorted(by_category.items())), several, unmatched


class RegionRows:
    """One region's people as read from its subjects.csv, compactly, until the file is known to be the sealed one."""

    def __init__(self) -> None:
        self.digests = bytearray()
        self.bits = array("I")
        self.unmatched = array("I")
        self.by_category: dict[str, int] = {}

    def add(self, digest: bytes | None, bits: int, categories: Sequence[str]) -> None:
        for category in categories:
            self.by_category[category] = self.by_category.get(category, 0) + 1
        if digest is None:
            self.unmatched.append(bits)
        else:
            self.digests += digest
            self.bits.append(bits)

    def __len__(self) -> int:
        return len(self.bits) + len(self.unmatched)


def hash_bytes(text: str) -> bytes | None:
    if len(text) != 64:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None

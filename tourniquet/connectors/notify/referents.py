"""Who tells a practitioner that their account was contained: the referent of their establishment.

A CSV the site keeps (``establishment,name,email,phone,url``): ``establishment`` is a pattern on the
account's DN or one of its groups' DNs (``cn=chu-lille,*``), matched case-insensitively, the first match wins. A referent is
reached at ``url`` (any Apprise URL) or at ``email`` through the route's ``mail`` channel. The
account's own address is never used: whoever took the account may be reading its mailbox.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from tourniquet.errors import ConfigError
from tourniquet.untrusted import read_bounded

__all__ = ["Referent", "Referents"]

COLUMNS = ("establishment", "name", "email", "phone", "url")
MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class Referent:
    establishment: str
    name: str
    email: str = ""
    phone: str = ""
    url: str = ""


@dataclass(frozen=True)
class Referents:
    entries: tuple[Referent, ...]

    @classmethod
    def read(cls, path: Path) -> "Referents":
        try:
            text = read_bounded(path, MAX_BYTES, "referents file").decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"referents file {path}: not UTF-8 text (byte offset {exc.start})") from None
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"referents file {path}: cannot read it: {reason}") from None
        try:
            return cls._parse(path, text)
        except csv.Error as exc:
            raise ConfigError(f"referents file {path}: not a CSV file: {exc}") from None

    @classmethod
    def _parse(cls, path: Path, text: str) -> "Referents":
        reader = csv.DictReader(io.StringIO(text))
        missing = {"establishment", "name"} - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(f"referents file {path}: missing column(s) {', '.join(sorted(missing))}")
        entries = []
        for number, row in enumerate(reader, start=2):
            values = {k: (row.get(k) or "").strip() for k in COLUMNS}
            if not values["establishment"]:
                continue
            if not (values["email"] or values["url"]):
                raise ConfigError(f"referents file {path}:{number}: a referent needs an email or a url")
            if values["email"] and ("@" not in values["email"] or any(c in values["email"] for c in "&?#/ ,;")):
                raise ConfigError(f"referents file {path}:{number}: {ascii(values['email'][:60])} is not an e-mail address")
            if values["url"] and "://" not in values["url"]:
                raise ConfigError(f"referents file {path}:{number}: url {ascii(values['url'][:60])} is not an Apprise URL")
            entries.append(Referent(**values))
        return cls(tuple(entries))

    def for_account(self, dn: str, groups: list[str] | tuple[str, ...] = ()) -> Referent | None:
        """The first referent whose pattern matches the account's DN or one of its groups (its establishment)."""
        names = [dn.casefold()] + [g.casefold() for g in groups]
        for entry in self.entries:
            pattern = entry.establishment.casefold()
            if any(fnmatchcase(name, pattern) for name in names):
                return entry
        return None

"""JSON-lines and CSV exports of the access log: one file, or every matching file of a folder.

``.gz`` files are read as such. The platform's names come from ``audit.columns``; an action code is
turned into fields by ``action_fields`` as for SQL logs (a subject table cannot be joined to a file).
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from tourniquet.connectors.audit.config import AuditConfig
from tourniquet.connectors.audit.events import SYSTEM, RawEvent, parse_time, text_or_none
from tourniquet.connectors.audit.stream import StreamSource
from tourniquet.errors import ConfigError, PermanentError

__all__ = ["FileSource"]


class FileSource(StreamSource):
    """A JSON-lines or CSV export (``kind: jsonl`` / ``csv``)."""

    def __init__(self, config: AuditConfig) -> None:
        if not config.path:
            raise ConfigError(f"audit: kind {config.kind} needs a path")
        super().__init__(config)
        self.path = Path(config.path)
        self.files()  # a missing export fails now, not in the middle of a run

    def files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if self.path.is_dir():
            suffix = ".jsonl" if self.config.kind == "jsonl" else ".csv"
            return sorted(p for p in self.path.iterdir() if p.name.endswith((suffix, suffix + ".gz")))
        raise ConfigError(f"audit: access log export {self.path} not found (check audit.path)")

    def _lines(self, file: Path) -> Iterator[dict[str, Any]]:
        opener: Callable[..., Any] = gzip.open if file.name.endswith(".gz") else open
        with opener(file, "rt", encoding="utf-8", newline="") as handle:
            if self.config.kind == "csv":
                yield from csv.DictReader(handle)
                return
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise PermanentError(f"{file}:{number}: not a JSON record ({exc})", system=SYSTEM) from exc
                if not isinstance(record, dict):
                    raise PermanentError(f"{file}:{number}: not a JSON object", system=SYSTEM)
                yield record

    def records(self, accounts: list[str], start: datetime, end: datetime) -> Iterator[RawEvent]:
        wanted = set(accounts)
        c = self.config.columns
        try:
            for file in self.files():
                for record in self._lines(file):
                    account = record.get(c.account)
                    if account is None or str(account) not in wanted:
                        continue
                    raw_time = record.get(c.timestamp)
                    try:
                        moment = parse_time(raw_time)
                    except (TypeError, ValueError, OverflowError) as exc:
                        raise PermanentError(f"{file}: bad timestamp {str(raw_time)[:40]!r}", system=SYSTEM) from exc
                    if not start <= moment < end:
                        continue
                    yield RawEvent(moment, str(account), text_or_none(record.get(c.subject)), record.get(c.action),
                                   record.get(c.fields) if c.fields else None, text_or_none(record.get(c.source_ip)),
                                   tuple(record.get(n) for n in c.may_hold_nir), None)
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise PermanentError(f"cannot read the access log export {self.path}: {exc}", system=SYSTEM) from exc

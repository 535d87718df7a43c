"""Generated platform access logs with known ground truth (tests, demo, benchmarks, hygiene).

An :class:`Access` is one log line in the default column names of
:class:`~tourniquet.connectors.audit.ColumnMapping` (``ts, account, patient_id, action, fields,
source_ip``) plus a free ``query`` column (what was typed in the search box — sometimes a NIR).

Build a log from pieces whose truth you know, then write it where a source reads it:

    log = [*normal_traffic(["adupont", "bmartin"], start=t0, days=30, per_day=40, patients=5000),
           *scraping("cdurand", patients=range(100, 400), start=t0, every=timedelta(minutes=7))]
    write_sqlite(log, tmp / "access.sqlite")   # or write_jsonl / write_csv

Everything is deterministic for a seed. Timestamps are UTC.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tourniquet.nir import nir_key

__all__ = [
    "Access", "patient_id", "normal_traffic", "scraping", "make_nir", "write_sqlite", "write_jsonl",
    "write_csv", "demo_log", "SQLITE_TIME", "IDENTITY", "CONTACT",
]

SQLITE_TIME = "%Y-%m-%d %H:%M:%S"  # the default AuditConfig.time_format
IDENTITY = ("last_name", "first_name", "birth_date")
CONTACT = ("phone", "email")


@dataclass(frozen=True, slots=True)
class Access:
    """One access log line."""

    ts: datetime
    account: str
    patient_id: str | None
    action: str = "view"
    fields: tuple[str, ...] = IDENTITY
    source_ip: str = "10.0.0.1"
    query: str = ""

    def row(self) -> dict[str, str | None]:
        """The line as the log stores it (fields comma-separated, time in ISO 8601 UTC)."""
        return {"ts": self.ts.astimezone(timezone.utc).isoformat(), "account": self.account,
                "patient_id": self.patient_id, "action": self.action, "fields": ",".join(self.fields),
                "source_ip": self.source_ip, "query": self.query}


def patient_id(number: int) -> str:
    """The platform's patient id for patient ``number`` (``P0000042``)."""
    return f"P{number:07d}"


def make_nir(sex: str = "1", year: int = 85, month: int = 5, department: str = "78", commune: str = "006",
             order: int = 84) -> str:
    """A NIR with a correct key, e.g. ``make_nir("7", 90, 30, "2A")`` (temporary, month 30, Corsica)."""
    body = f"{sex}{year:02d}{month:02d}{department}{commune}{order:03d}"
    return f"{body}{nir_key(body):02d}"


def normal_traffic(
    accounts: Sequence[str],
    *,
    start: datetime,
    days: int,
    per_day: int,
    patients: int,
    seed: int = 1,
) -> Iterator[Access]:
    """Ordinary care traffic: each account, each weekday, ``per_day`` views in office hours from its own IP,
    of patients drawn from ``range(patients)``; now and then contact fields too. Ordered by account, then time."""
    rng = random.Random(seed)
    for index, account in enumerate(accounts):
        ip = f"10.1.{index // 250}.{index % 250 + 1}"
        for day in range(days):
            date = start + timedelta(days=day)
            if date.weekday() >= 5:
                continue
            moments = sorted(rng.randrange(8 * 3600, 18 * 3600) for _ in range(per_day))
            for second in moments:
                fields = IDENTITY + CONTACT if rng.random() < 0.2 else IDENTITY
                yield Access(date + timedelta(seconds=second), account, patient_id(rng.randrange(patients)),
                             "view", fields, ip)


def scraping(
    account: str,
    *,
    patients: Iterable[int],
    start: datetime,
    every: timedelta = timedelta(minutes=5),
    fields: tuple[str, ...] = IDENTITY + CONTACT,
    ip: str = "185.220.101.7",
    action: str = "search",
) -> Iterator[Access]:
    """A misused account reading ``patients`` one after the other, one every ``every`` ("low and slow")."""
    moment = start
    for number in patients:
        yield Access(moment, account, patient_id(number), action, fields, ip)
        moment += every


def demo_log(
    accounts: Sequence[str],
    compromised: Sequence[str],
    *,
    end: datetime,
    days: int = 120,
    attack_days: int = 27,
    patients: int = 4000,
    seed: int = 11,
) -> list[Access]:
    """The demo's log: ``days`` of normal traffic for every account; in the last ``attack_days`` the
    compromised ones also scraped patients at night from a new network (overlapping sets, so some people
    were seen by several of them), a few by their NIR — after months of their owners' own history, so
    ``since: auto`` finds when each attack began."""
    start = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    attack = start + timedelta(days=max(0, days - attack_days))
    log = list(normal_traffic(accounts, start=start, days=days, per_day=8, patients=patients, seed=seed))
    for index, account in enumerate(compromised):
        first = 1000 + index * 150
        log.extend(scraping(account, patients=range(first, first + 300), start=attack + timedelta(days=index,
                            hours=1), every=timedelta(minutes=11 + index), ip=f"185.220.101.{7 + index}"))
        log.extend(Access(attack + timedelta(days=2 + index, hours=2, minutes=n), account, patient_id(first + n),
                          "search", ("nir",) + IDENTITY, f"185.220.101.{7 + index}",
                          query=make_nir("2", 60 + n, 30 + n % 10, "2B" if n % 2 else "59"))
                   for n in range(10))
    log.sort(key=lambda access: access.ts)
    return log


def write_sqlite(accesses: Iterable[Access], path: str | Path, table: str = "access_log",
                 batch: int = 50_000) -> int:
    """Create (or append to) an SQLite log with an (account, ts) index; returns the number of lines written."""
    connection = sqlite3.connect(str(path))
    try:
        connection.execute(f"CREATE TABLE IF NOT EXISTS {table} (ts TEXT NOT NULL, account TEXT NOT NULL, "
                           "patient_id TEXT, action TEXT, fields TEXT, source_ip TEXT, query TEXT)")
        count = 0
        rows: list[tuple[object, ...]] = []
        insert = f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?)"
        for access in accesses:
            rows.append((access.ts.astimezone(timezone.utc).strftime(SQLITE_TIME), access.account,
                         access.patient_id, access.action, ",".join(access.fields), access.source_ip, access.query))
            if len(rows) >= batch:
                connection.executemany(insert, rows)
                count += len(rows)
                rows.clear()
        connection.executemany(insert, rows)
        count += len(rows)
        connection.execute(f"CREATE INDEX IF NOT EXISTS {table}_account_ts ON {table} (account, ts)")
        connection.commit()
        return count
    finally:
        connection.close()


def write_jsonl(accesses: Iterable[Access], path: str | Path) -> int:
    """One JSON object per line (gzip when the name ends in .gz); fields as a JSON list."""
    path = Path(path)
    count = 0
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as handle:
        for access in accesses:
            row = access.row()
            handle.write(json.dumps({**row, "fields": list(access.fields)}) + "\n")
            count += 1
    return count


def write_csv(accesses: Iterable[Access], path: str | Path) -> int:
    """A CSV export with a header line; fields comma-separated inside one quoted cell."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["ts", "account", "patient_id", "action", "fields",
                                                    "source_ip", "query"])
        writer.writeheader()
        for access in accesses:
            writer.writerow(access.row())
            count += 1
    return count

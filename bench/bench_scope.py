"""Benchmark: snapshot_scope on a large SQLite access log against the bare indexed SQL query.

    .venv/bin/python bench/bench_scope.py                 # 10 million events (generated once, cached)
    .venv/bin/python bench/bench_scope.py --events 1000000

The log: ``--events`` accesses over 90 days by 2,000 ordinary accounts and 10 compromised ones
(6 % of the traffic), patients drawn from one million, an (account, ts) index. Each measurement
runs in a fresh process so its peak RSS is its own:

- baseline: the bare indexed query a DBA would type (events, distinct patients, first/last per
  account, plus the distinct total) — the floor, with no categories, IPs or subject list;
- scope 30 d: ``snapshot_scope`` for the 10 accounts over 30 days, every affected subject streamed
  to a callback (as the evidence writer does);
- scope 90 d: the same over 90 days (three times the events) — memory must not grow with events;
- freeze 30 d: streaming the matching events to events.jsonl.gz (the frozen evidence).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

END = datetime(2025, 9, 8, tzinfo=timezone.utc)
DAYS = 90
ACCOUNTS = [f"user{n:04d}" for n in range(2000)]
COMPROMISED = [f"stolen{n:02d}" for n in range(10)]
FIELDS = ["last_name,first_name", "last_name,first_name,birth_date", "last_name,first_name,phone,email",
          "last_name,first_name,nir"]


def generate(path: Path, events: int, seed: int = 5) -> None:
    from tourniquet.demo.access_log import make_nir

    rng = random.Random(seed)
    start = int((END - timedelta(days=DAYS)).timestamp())
    span = DAYS * 86400
    nirs = [make_nir(str(rng.choice("12")), rng.randrange(100), rng.randrange(1, 13), f"{rng.randrange(1, 96):02d}")
            for _ in range(1000)]
    connection = sqlite3.connect(str(path))
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("CREATE TABLE access_log (ts TEXT NOT NULL, account TEXT NOT NULL, patient_id TEXT, "
                       "action TEXT, fields TEXT, source_ip TEXT, query TEXT)")
    stamp = time.gmtime
    batch = []
    for n in range(events):
        compromised = rng.random() < 0.06
        account = rng.choice(COMPROMISED) if compromised else ACCOUNTS[rng.randrange(2000)]
        ts = time.strftime("%Y-%m-%d %H:%M:%S", stamp(start + rng.randrange(span)))
        query = nirs[rng.randrange(1000)] if rng.random() < 0.01 else ""
        batch.append((ts, account, f"P{rng.randrange(1_000_000):07d}", "search" if compromised else "view",
                      FIELDS[rng.randrange(4)], "185.220.101.7" if compromised else "10.1.0.1", query))
        if len(batch) == 100_000:
            connection.executemany("INSERT INTO access_log VALUES (?,?,?,?,?,?,?)", batch)
            batch.clear()
    connection.executemany("INSERT INTO access_log VALUES (?,?,?,?,?,?,?)", batch)
    connection.execute("CREATE INDEX access_log_account_ts ON access_log (account, ts)")
    connection.commit()
    connection.close()


def measure(kind: str, path: str, days: int) -> dict[str, float]:
    """Run one measurement in this process; returns seconds, peak RSS and what it found."""
    since = END - timedelta(days=days)
    started = time.perf_counter()
    found: dict[str, float] = {}
    if kind == "baseline":
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        marks = ",".join("?" * len(COMPROMISED))
        params = [*COMPROMISED, since.strftime("%Y-%m-%d %H:%M:%S"), END.strftime("%Y-%m-%d %H:%M:%S")]
        where = f"account IN ({marks}) AND ts >= ? AND ts < ?"
        rows = connection.execute(f"SELECT account, COUNT(*), COUNT(DISTINCT patient_id), MIN(ts), MAX(ts) "
                                  f"FROM access_log WHERE {where} GROUP BY account", params).fetchall()
        (people,) = connection.execute(f"SELECT COUNT(DISTINCT patient_id) FROM access_log WHERE {where}",
                                       params).fetchone()
        found = {"events": sum(r[1] for r in rows), "people": people}
    else:
        from tourniquet.connectors.audit import AuditConfig, ColumnMapping, connect

        client = connect(AuditConfig(kind="sqlite", path=path,  # type: ignore[call-arg]
                                     columns=ColumnMapping(may_hold_nir=["query"])))  # type: ignore[call-arg]
        if kind == "scope":
            seen = [0]

            def count(subject: object) -> None:
                seen[0] += 1

            scope = client.snapshot_scope(COMPROMISED, since, END, on_subject=count)
            found = {"events": scope.total.events, "people": scope.total.subjects, "streamed": seen[0],
                     "nir_people": scope.total.subjects_by_category.get("social_security_number", 0)}
        else:
            import gzip

            out = Path(path).with_suffix(".events.jsonl.gz")
            n = 0
            with gzip.open(out, "wt", encoding="utf-8") as handle:
                for event in client.events(COMPROMISED, since, END):
                    handle.write(json.dumps(event.as_json()) + "\n")
                    n += 1
            found = {"events": n}
            out.unlink()
        client.close()
    found["seconds"] = time.perf_counter() - started
    found["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--data", default=str(REPO / "var" / "bench"))
    parser.add_argument("--measure", nargs=3, metavar=("KIND", "PATH", "DAYS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, path, days = args.measure
        print(json.dumps(measure(kind, path, int(days))))
        return
    folder = Path(args.data)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"access-{args.events}.sqlite"
    if not path.exists():
        started = time.perf_counter()
        generate(path.with_suffix(".partial"), args.events)
        path.with_suffix(".partial").rename(path)
        print(f"generated {args.events:,} events in {time.perf_counter() - started:.0f} s "
              f"({path.stat().st_size / 1e9:.2f} GB)")
    idle = json.loads(subprocess.run([sys.executable, "-c", "import resource, json, tourniquet.connectors.audit; "
                                      "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"],
                                     capture_output=True, text=True, check=True, cwd=REPO).stdout)
    results = {}
    for label, kind, days in (("baseline 30 d", "baseline", 30), ("scope 30 d", "scope", 30),
                              ("scope 90 d", "scope", 90), ("freeze 30 d", "freeze", 30)):
        output = subprocess.run([sys.executable, __file__, "--measure", kind, str(path), str(days)],
                                capture_output=True, text=True, check=True, cwd=REPO).stdout
        results[label] = json.loads(output)
        print(f"{label:14} {json.dumps(results[label])}")
    base = results["baseline 30 d"]["seconds"]
    print(f"\n{args.events:,} events, 10 accounts, 30-day window; idle interpreter with the connector "
          f"imported: {idle:.0f} MB")
    for label, result in results.items():
        print(f"  {label:14} {result['seconds']:7.2f} s  ({result['seconds'] / base:4.1f}x baseline)  "
              f"peak RSS {result['peak_rss_mb']:6.0f} MB  events {int(result['events']):,}"
              + (f"  people {int(result['people']):,}" if "people" in result else ""))


if __name__ == "__main__":
    main()

"""Benchmark: the data scope on a platform's own log, 1 M and 10 M accesses, against the bare indexed SQL.

    nice .venv/bin/python bench/bench_scope.py                       # 1 M and 10 M (generated once, cached)
    nice .venv/bin/python bench/bench_scope.py --events 1000000 3000000

The log is :mod:`tourniquet.demo.platform` in its own vocabulary (``journal_acces`` + ``patient``, three
regions, 300,000 patients, action codes; no view): about one account per 2,900 accesses, working as
practitioners do for 150 days, ten of them attacked (four styles) with an attack volume that grows with the
log (40 accesses a day per attacker per million), so the scope reads ten times more at 10 M than at 1 M.
Each measurement runs in a fresh process so its peak RSS is its own:

- baseline: the bare indexed query a DBA would type for the same window (events and distinct patients per
  account, the distinct total) — the floor: no subject table, no categories, no attribution, no list;
- scope: ``snapshot_scope`` — the daily walk over the lookback (when did it start), the owners' history, the
  grouped read joined to the patient table, every person streamed to a callback (as the evidence writer does);
- freeze: the matching accesses streamed to events.jsonl.gz with their attribution (the frozen evidence).

Memory must not grow with the log: the last line compares peak RSS at each size.
"""

from __future__ import annotations

import argparse
import gzip
import json
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
DAYS = 150
PER_USER = 2900
ATTACKS = (45, 20, 12, 28, 35, 50, 15, 25, 40, 30)


def users_for(events: int) -> tuple[list[str], list[str]]:
    users = [f"ps{n:05d}" for n in range(max(60, events // PER_USER))]
    return users, users[7::max(1, len(users) // 10)][:10]


def build(events: int):  # type: ignore[no-untyped-def]
    from tourniquet.demo.platform import build_platform

    users, compromised = users_for(events)
    return build_platform(users, compromised, end=END, days=DAYS, patients_per_region=100_000,
                          attack_days_ago=ATTACKS, attack_per_day=max(40, 40 * events // 1_000_000), seed=5)


def generate(path: Path, events: int) -> None:
    from tourniquet.demo.platform import write_platform_sqlite

    write_platform_sqlite(build(events), path)


def window(events: int) -> tuple[list[str], datetime]:
    """The compromised accounts and a fixed window covering every attack (the same work for every measure)."""
    _, compromised = users_for(events)
    return compromised, END - timedelta(days=max(ATTACKS) + 2)


def measure(kind: str, path: str, events: int) -> dict[str, float]:
    """Run one measurement in this process; returns seconds, peak RSS and what it found."""
    accounts, since = window(events)
    started = time.perf_counter()
    found: dict[str, float] = {}
    if kind == "baseline":
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        marks = ",".join("?" * len(accounts))
        params = [*accounts, since.strftime("%Y-%m-%d %H:%M:%S"), END.strftime("%Y-%m-%d %H:%M:%S")]
        where = f"utilisateur IN ({marks}) AND horodatage >= ? AND horodatage < ?"
        rows = connection.execute(f"SELECT utilisateur, COUNT(*), COUNT(DISTINCT id_patient), MIN(horodatage), "
                                  f"MAX(horodatage) FROM journal_acces WHERE {where} GROUP BY utilisateur",
                                  params).fetchall()
        (people,) = connection.execute(f"SELECT COUNT(DISTINCT id_patient) FROM journal_acces WHERE {where}",
                                       params).fetchone()
        found = {"events": sum(r[1] for r in rows), "people": people}
    else:
        from tourniquet.connectors.audit import AuditConfig, connect
        from tourniquet.demo.platform import site_audit

        client = connect(AuditConfig.model_validate(site_audit(kind="sqlite", path=path)), state_dir=None)
        plan = client.plan(accounts, since, END)
        if kind == "scope":
            seen = [0]

            def count(subject: object) -> None:
                seen[0] += 1

            scope = client.scope(plan, on_subject=count)
            found = {"events": scope.total.events, "people": scope.total.subjects, "streamed": seen[0],
                     "anomalous": scope.total.anomalous.events,
                     "nir_people": scope.total.subjects_by_category.get("social_security_number", 0)}
        else:
            out = Path(path).with_suffix(".events.jsonl.gz")
            n = 0
            with gzip.open(out, "wt", encoding="utf-8") as handle:
                for event in client.events(plan):
                    handle.write(json.dumps(event.as_json()) + "\n")
                    n += 1
            found = {"events": n}
            out.unlink()
        client.close()
    found["seconds"] = time.perf_counter() - started
    found["peak_rss_mb"] = peak_rss_mb()
    return found


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM: reset by exec, unlike ru_maxrss, which a child started by a big
    parent inherits)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--data", default=str(REPO / "var" / "bench"))
    parser.add_argument("--measure", nargs=3, metavar=("KIND", "PATH", "EVENTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, path, events = args.measure
        print(json.dumps(measure(kind, path, int(events))))
        return
    folder = Path(args.data)
    folder.mkdir(parents=True, exist_ok=True)
    idle = json.loads(subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'bench'); "
                                      "import tourniquet.connectors.audit, tourniquet.actions.audit, bench_scope; "
                                      "print(bench_scope.peak_rss_mb())"],
                                     capture_output=True, text=True, check=True, cwd=REPO).stdout)
    peaks: dict[int, float] = {}
    for size in args.events:
        path = folder / f"platform-{size}.sqlite"
        if not path.exists():
            started = time.perf_counter()
            generate(path.with_suffix(".partial"), size)
            path.with_suffix(".partial").rename(path)
            print(f"generated a {size:,}-access platform log in {time.perf_counter() - started:.0f} s "
                  f"({path.stat().st_size / 1e9:.2f} GB)")
        (rows,) = sqlite3.connect(f"file:{path}?mode=ro", uri=True).execute(
            "SELECT COUNT(*) FROM journal_acces").fetchone()
        results = {}
        for kind in ("baseline", "scope", "freeze"):
            output = subprocess.run([sys.executable, __file__, "--measure", kind, str(path), str(size)],
                                    capture_output=True, text=True, check=True, cwd=REPO).stdout
            results[kind] = json.loads(output.strip().splitlines()[-1])
        base = results["baseline"]["seconds"]
        print(f"\n{rows:,} accesses in the log, 10 accounts; idle interpreter with the scope imported: {idle:.0f} MB")
        for kind, result in results.items():
            print(f"  {kind:9} {result['seconds']:7.2f} s  ({result['seconds'] / base:5.1f}x baseline)  "
                  f"peak RSS {result['peak_rss_mb']:6.0f} MB  events {int(result['events']):,}"
                  + (f"  people {int(result['people']):,}" if "people" in result else "")
                  + (f"  anomalous {int(result['anomalous']):,}" if "anomalous" in result else ""))
        peaks[size] = max(results["scope"]["peak_rss_mb"], results["freeze"]["peak_rss_mb"])
    if len(peaks) > 1:
        sizes = sorted(peaks)
        print("\npeak RSS of scope/freeze by log size: "
              + ", ".join(f"{s:,}: {peaks[s]:.0f} MB" for s in sizes)
              + f"  (growth {peaks[sizes[-1]] - peaks[sizes[0]]:+.0f} MB for {sizes[-1] // sizes[0]}x the log)")


if __name__ == "__main__":
    main()

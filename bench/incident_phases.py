"""What the incident benchmark reads and prints: phases from the journals, bare baselines, peaks, sizes.

The phases come from the regions' journals (each record is timestamped when written): a step's time
is from its first record to its last. The baselines do the same work with nothing else: the region's
scope as one bare SQL statement (events and distinct people per account over the lookback, and the
distinct total), the national count as a set union of the regions' keyed NIR hashes.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["ProcessPeaks", "bare_scope", "bare_union", "database_sizes", "log_rows", "journal_phases",
           "print_report"]

#: The credential-misuse steps that change accounts (and resolve them first).
CONTAINMENT = ("resolve", "snapshot", "scramble", "lock", "reset", "end_sessions", "idp_disable", "revocation")


class ProcessPeaks:
    """Peak RSS (VmHWM) of every process below ``root`` (workers, flow runs, the Prefect server, slapd …)."""

    def __init__(self, root: int) -> None:
        self.root, self.peaks, self._stop = root, {}, threading.Event()  # type: dict[int, tuple[str, int]]
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _descendants(self) -> list[int]:
        found, frontier = [], [self.root]
        while frontier:
            pid = frontier.pop()
            children = []
            for task in Path(f"/proc/{pid}/task").glob("*"):  # a child started by any thread (the scope's are)
                try:
                    children += [int(c) for c in (task / "children").read_text().split()]
                except OSError:
                    continue
            found += children
            frontier += children
        return found

    def _sample(self) -> None:
        while not self._stop.wait(0.3):
            for pid in self._descendants():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        if kb > self.peaks.get(pid, ("", 0))[1]:
                            self.peaks[pid] = (command, kb)

    def snapshot(self) -> list[tuple[str, float]]:
        return sorted(((command, kb / 1024) for command, kb in self.peaks.values()), key=lambda x: -x[1])[:15]

    def __enter__(self) -> ProcessPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bare_scope(dsn: str, schema: dict[str, Any], accounts: list[str], end: datetime,
               lookback_days: int = 180) -> dict[str, Any]:
    """What a DBA would type: events and distinct people per account over the lookback, and the distinct total."""
    import psycopg

    s = schema
    since = end - timedelta(days=lookback_days)
    started = time.perf_counter()
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            f"SELECT {s['account']}, count(*), count(DISTINCT {s['subject']}) FROM {s['log']} "
            f"WHERE {s['account']} = ANY(%s) AND {s['ts']} >= %s AND {s['ts']} < %s GROUP BY 1",
            (accounts, since, end)).fetchall()
        people = connection.execute(
            f"SELECT count(DISTINCT {s['subject']}) FROM {s['log']} WHERE {s['account']} = ANY(%s) "
            f"AND {s['ts']} >= %s AND {s['ts']} < %s", (accounts, since, end)).fetchone()
    return {"seconds": time.perf_counter() - started, "events": sum(r[1] for r in rows),
            "people": people[0] if people else 0}


def bare_union(bundles: list[Path]) -> dict[str, Any]:
    """The national count by hand: the regions' ``subjects.csv`` read, their non-empty hashes in one set."""
    started = time.perf_counter()
    hashes: set[str] = set()
    without = 0
    for bundle in bundles:
        for path in sorted(bundle.glob("scope/*/subjects.csv"))[-1:]:
            with path.open(encoding="utf-8", newline="") as handle:
                for row in csv.DictReader(handle):
                    if row.get("national_hash"):
                        hashes.add(row["national_hash"])
                    else:
                        without += 1
    return {"seconds": time.perf_counter() - started, "people": len(hashes) + without}


def database_sizes(pg: tuple[str, int], databases: list[str]) -> dict[str, float]:
    import psycopg

    sizes = {}
    with psycopg.connect(f"host={pg[0]} port={pg[1]} user=postgres dbname=postgres") as connection:
        for name in databases:
            row = connection.execute("SELECT pg_database_size(%s)", (name,)).fetchone()
            sizes[name] = (row[0] if row else 0) / 2**30
    return sizes


def log_rows(pg: tuple[str, int], tables: dict[str, str]) -> dict[str, int]:
    """The events each region's log really holds (region → table), counted after the timed part."""
    import psycopg

    counts = {}
    for region, table in tables.items():
        with psycopg.connect(f"host={pg[0]} port={pg[1]} user=postgres dbname={region}") as connection:
            row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[region] = int(row[0]) if row else 0
    return counts


def journal_phases(path: Path) -> dict[str, Any]:
    """Per step: seconds from its first record to its last; approvals: requested → answered."""
    if not path.exists():
        return {}
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    waits: list[float] = []
    requested = None
    records = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            records += 1
            moment = datetime.fromisoformat(record["time"])
            step = record.get("step") or record.get("type")
            first.setdefault(step, moment)
            last[step] = moment
            if record.get("type") == "approval":
                if record.get("status") == "requested":
                    requested = moment
                elif requested is not None:
                    waits.append((moment - requested).total_seconds())
    order = sorted(first, key=lambda s: first[s])
    start = min(first.values()) if first else None
    return {"records": records, "approval_wait": sum(waits), "last": max(last.values()).timestamp() if last else 0,
            "steps": {s: {"start": (first[s] - start).total_seconds() if start else 0,
                          "seconds": (last[s] - first[s]).total_seconds()} for s in order}}


def _sum(phases: dict[str, Any], names: tuple[str, ...]) -> float:
    return sum(v["seconds"] for s, v in phases.get("steps", {}).items() if s in names)


def print_report(results: dict[str, Any], whole_run: dict[str, Any], how: str) -> None:
    """One measure as Markdown tables (``results``: the measure; ``whole_run``: sizes and accounts)."""
    runs = results["timeline"]
    marks = runs["marks"]
    sizes = whole_run["sizes"]
    whole = marks["verified"] - marks["alert"]
    print(f"\nincident: {whole_run['accounts']:,} accounts in 3 regions, {sizes['events']:,} access events "
          f"({sizes['per_region']:,} per region), {sizes['patients']:,} people per region, "
          f"{sizes['practitioners']:,} practitioners per region; Prefect server on PostgreSQL, {how}")
    print(f"run: {runs['state']} {runs['message'] or ''}; plan: {runs['plan']}; evidence verify exit {runs['verify_code']}")
    print("\n| phase | seconds |")
    print("|---|---|")
    print(f"| alert → plan (dry run) final | {marks['planned'] - marks['alert']:.1f} |")
    print(f"| live run (approvals, containment, scope, tickets, seals, national) | "
          f"{marks['run_final'] - marks['planned']:.1f} |")
    print(f"| `tourniquet evidence verify` (3 regions + national) | {marks['verified'] - marks['run_final']:.1f} |")
    print(f"| **whole: alert → verified national summary** | **{whole:.1f}** ({whole / 60:.1f} min) |")
    live = marks["verified"] - marks["planned"]
    print(f"| live run started → verified (without the plan) | {live:.1f} ({live / 60:.1f} min) |")
    base = results["baselines"]
    print("\n| region | step | seconds | bare baseline | ratio |")
    print("|---|---|---|---|---|")
    for region, phases in results["phases"].items():
        contain = _sum(phases, CONTAINMENT) - phases.get("approval_wait", 0)  # the approval waits inside a step
        ldap3, libldap = base[f"ldap3 {region}"]["seconds"], base[f"python-ldap {region}"]["seconds"]
        sql = base[f"sql {region}"]["seconds"]
        print(f"| {region} | approval wait | {phases.get('approval_wait', 0):.1f} | — | — |")
        print(f"| {region} | containment steps | {contain:.1f} | ldap3 loop {ldap3:.1f} s / python-ldap "
              f"{libldap:.1f} s | {contain / ldap3:.2f}x / {contain / libldap:.2f}x |")
        scope = _sum(phases, ("scope",))
        print(f"| {region} | scope | {scope:.1f} | bare SQL {sql:.1f} s | {scope / sql:.2f}x |")
        others = sum(v["seconds"] for step, v in phases.get("steps", {}).items()
                     if step not in (*CONTAINMENT, "scope", "run"))
        print(f"| {region} | tickets, seal, notes | {others:.1f} | | |")
        print(f"| {region} | journal records | {phases.get('records', 0):,} | | |")
    national = results.get("national_phases") or {}
    union = base["union"]
    regions_done = max((p.get("last", 0) for p in results["phases"].values()), default=marks["run_final"])
    national_seconds = max(0.0, marks["run_final"] - regions_done)  # the last region's seal → the run's end
    print(f"| national | last region sealed → run final (summary, seal, {national.get('records', 0)} records) "
          f"| {national_seconds:.1f} | set union {union['seconds']:.2f} s "
          f"({union['people']:,} people) | {national_seconds / max(union['seconds'], 1e-3):.1f}x |")
    print("\n| process | peak RSS |")
    print("|---|---|")
    for command, mb in results["peaks"]:
        print(f"| `{command[:90]}` | {mb:.0f} MB |")
    print(f"\nverify output:\n{runs['verify']}")

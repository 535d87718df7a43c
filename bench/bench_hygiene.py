"""Benchmark: a hygiene run over a big directory, a big access log and a full register extract.

    .venv/bin/python bench/bench_hygiene.py                      # 100,000 entries, ~5 M events
    .venv/bin/python bench/bench_hygiene.py --entries 5000 --active 200   # a quick look
    .venv/bin/python bench/bench_hygiene.py --seeds 1,2,3 --normal 400    # ground truth on other seeds

Generates (not timed): a slapd with ``--entries`` practitioners (``--active`` of them working
in the access log, the others idle), the SQLite access log over 100 days (indexes on ts and
(account, ts), ANALYZE), and a zipped register extract with every practitioner but the planted
ones plus ``--strangers`` others. Then runs the shipped hygiene playbook **in a child
process**, so that its peak memory (ru_maxrss) is the run's own, and prints:

- wall time and peak RSS of the run, per-phase timings;
- plain baselines: a bare paged search of the directory (ldap3, nothing else), the simplest
  per-account aggregate over the whole log (distinct patients per account), a bare line count
  of the extract —
  and the run's ratios to them;
- the planted cases found and any active normal account flagged (the ground truth holds at scale).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import write_site  # noqa: E402
from tests.testbed.hygiene_data import (  # noqa: E402
    NORMAL_PROFILES,
    PLANTS,
    HygieneSlapd,
    build_scenario,
    write_access_log,
    write_directory_ldif,
    write_register,
)
from tourniquet.config import load_site  # noqa: E402
from tourniquet.connectors.directory import DirectoryClient  # noqa: E402

#: What the hygiene sweep reads per entry: the baseline reads the same, and does nothing with it.
SWEPT = ["uid", "employeeNumber", "mail", "pwdLastSuccess", "authTimestamp", "createTimestamp",
         "pwdAccountLockedTime", "pwdPolicySubentry"]

CHILD = """
import json, resource, sys, time
from tourniquet.hygiene import run_hygiene
started = time.monotonic()
result = run_hygiene(sys.argv[1], sys.argv[2], as_of=sys.argv[3], register=sys.argv[4])
seconds = time.monotonic() - started
found = {}
for f in result.iter_findings():
    found.setdefault(f.kind, []).append(f.account)
print(json.dumps({"seconds": seconds, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "swept": result.accounts_swept, "findings": result.finding_count, "found": found,
                  "timings": result.timings, "checks": result.checks, "responses": len(result.responses)}))
"""


def ground_truth(seeds: list[int], normal: int) -> int:
    """Same generator, other seeds: every planted case found, no normal account flagged?"""
    from tourniquet.hygiene import run_hygiene

    failures = 0
    for seed in seeds:
        folder = Path(tempfile.mkdtemp(prefix=f"tourniquet-hygiene-seed{seed}-"))
        scenario = build_scenario(normal, seed=seed)
        server = HygieneSlapd(scenario.directory.suffix, "bench-root", directory=folder / "slapd")
        try:
            server.configure(write_directory_ldif(scenario, folder / "data.ldif"))
            server.start()
            events = write_access_log(scenario, folder / "audit.sqlite", seed=seed + 10)
            register = write_register(scenario, folder / "register")
            site_file = write_site(folder, server, scenario.directory,
                                   audit={"kind": "sqlite", "path": str(folder / "audit.sqlite")})
            result = run_hygiene(str(ROOT / "playbooks" / "hygiene.yaml"), site_file, as_of=scenario.as_of,
                                 register=str(register.parent), respond=False)
            found: dict[str, set[str]] = {}
            for finding in result.iter_findings():
                found.setdefault(finding.kind, set()).add(finding.account)
            roles = {a.uid: a.role for a in scenario.accounts}
            normal_roles = {name for name, _ in NORMAL_PROFILES}
            missed = {k: sorted(e - found.get(k, set())) for k, e in scenario.expected.items() if e - found.get(k, set())}
            flagged = sorted({(u, k) for k, us in found.items() for u in us if roles.get(u) in normal_roles})
            overlaps = sorted({(u, k, roles[u]) for k, us in found.items() for u in us
                               if roles.get(u) not in normal_roles and u not in scenario.expected.get(k, set())})
            failures += bool(missed or flagged)
            print(f"seed {seed}: {normal} normal accounts, {events:,} events: planted missed {missed or 'none'}; "
                  f"normal accounts flagged {flagged or 'none'}; planted seen by another check {overlaps or 'none'}")
        finally:
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", help="ground truth only: comma-separated generator seeds (e.g. 1,2,3)")
    parser.add_argument("--normal", type=int, default=400, help="with --seeds: normal accounts per platform")
    parser.add_argument("--entries", type=int, default=100_000, help="directory entries (practitioners)")
    parser.add_argument("--active", type=int, default=2_000, help="of which working in the access log")
    parser.add_argument("--strangers", type=int, default=300_000, help="other practitioners in the register")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    args = parser.parse_args()
    if args.seeds:
        return ground_truth([int(x) for x in args.seeds.split(",")], args.normal)

    folder = Path(tempfile.mkdtemp(prefix="tourniquet-bench-hygiene-"))
    planted = sum(count for count, _ in PLANTS.values())
    idle = max(0, args.entries - args.active - planted)
    server: HygieneSlapd | None = None
    try:
        started = time.monotonic()
        scenario = build_scenario(args.active, idle=idle)
        server = HygieneSlapd(scenario.directory.suffix, "bench-root", directory=folder / "slapd")
        server.configure(write_directory_ldif(scenario, folder / "data.ldif"))
        server.start(timeout=60)
        events = write_access_log(scenario, folder / "audit.sqlite")
        register = write_register(scenario, folder / "register", extra=args.strangers, adeli=20_000)
        site_file = write_site(folder, server, scenario.directory,
                               audit={"kind": "sqlite", "path": str(folder / "audit.sqlite"), "timeout": 600},
                               directory={"timeout": 60})
        print(f"generated in {time.monotonic() - started:.0f}s: {len(scenario.accounts)} directory entries "
              f"({args.active} active, {idle} idle, {planted} planted), {events:,} access-log events, "
              f"register {register.name} ({register.stat().st_size / 1e6:.1f} MB zipped)")

        # -- plain baselines
        site = load_site(site_file)
        t = time.monotonic()
        with DirectoryClient(site.directory) as client:
            entries = sum(1 for _ in client.iter_entries(attributes=SWEPT))
        ldap_plain = time.monotonic() - t
        t = time.monotonic()
        connection = sqlite3.connect(folder / "audit.sqlite")
        total, accounts = connection.execute("SELECT COUNT(*), COUNT(DISTINCT account) FROM access_log").fetchone()
        count_plain = time.monotonic() - t
        t = time.monotonic()
        connection.execute("SELECT account, COUNT(DISTINCT patient_id) FROM access_log GROUP BY account").fetchall()
        connection.close()
        sql_plain = time.monotonic() - t
        t = time.monotonic()
        with zipfile.ZipFile(register) as archive, archive.open(archive.namelist()[0]) as handle:
            lines = sum(1 for _ in handle)
        register_plain = time.monotonic() - t
        print(f"baselines: paged search of {entries:,} entries {ldap_plain:.1f}s; COUNT over {total:,} events "
              f"({accounts:,} accounts) {count_plain:.1f}s; distinct patients per account over the whole log "
              f"{sql_plain:.1f}s; {lines:,} register lines counted {register_plain:.1f}s")

        # -- the run, in a child process
        run = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "playbooks" / "hygiene.yaml"), str(site_file),
                              scenario.as_of.isoformat(), str(register.parent)],
                             capture_output=True, text=True, cwd=ROOT)
        if run.returncode != 0:
            print(run.stderr[-4000:])
            return 1
        report = json.loads(run.stdout.strip().splitlines()[-1])
        peak_mb = report["rss_kb"] / 1024
        print(f"hygiene run: {report['seconds']:.1f}s wall, peak RSS {peak_mb:.0f} MB, {report['swept']:,} entries "
              f"swept, {report['findings']:,} findings, {report['responses']} response plan(s)")
        for name, seconds in report["timings"].items():
            print(f"  {name:40} {seconds:8.2f}s")
        sweep = report["timings"].get("directory sweep", 0.0)
        queries = sum(v for k, v in report["timings"].items()
                      if k in ("volume", "off-hours", "new-network", "low-and-slow"))
        print(f"ratios: directory sweep / plain paged search = {sweep / ldap_plain:.1f}; access checks / one pass "
              f"over the log = {queries / sql_plain:.1f}; register load / line count = "
              f"{report['timings'].get('not-registered (prepare)', 0.0) / max(register_plain, 1e-9):.1f}"
              f" (access checks = the 4 unusual-access checks, 5 queries)")

        # -- ground truth at scale
        found = {kind: set(accounts) for kind, accounts in report["found"].items()}
        roles = {a.uid: a.role for a in scenario.accounts}
        normal = {name for name, _ in NORMAL_PROFILES}
        missed = {kind: sorted(p - found.get(kind, set())) for kind, p in scenario.expected.items() if p - found.get(kind, set())}
        flagged = sorted({(u, k) for k, us in found.items() for u in us if roles.get(u) in normal})
        counts = {k: len(v) for k, v in found.items()}
        print(f"findings per check: {counts} (dormant includes the {idle:,} idle entries)")
        print(f"planted missed: {missed or 'none'}; active normal accounts flagged: {flagged or 'none'}")
        return 0
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"data kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

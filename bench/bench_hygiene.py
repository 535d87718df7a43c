"""Benchmark: hygiene on a big platform, and on platforms already misused before the first run.

    nice .venv/bin/python bench/bench_hygiene.py                       # 1,000,000 entries, ~10 M events
    nice .venv/bin/python bench/bench_hygiene.py --data /var/tmp/hyg   # the same, generated once, reused after
    nice .venv/bin/python bench/bench_hygiene.py --seeds 1,2,3,4,5     # ground truth: 10,000 normal accounts each
    .venv/bin/python bench/bench_hygiene.py --entries 20000 --normal 1000   # a quick look

**Scale** (default). Generates (not timed) a slapd with ``--entries`` directory entries — ``--normal``
accounts working in the access log (day workers, night shifts, emergency departments and the
look-alikes of tests/testbed/hygiene_data.py), the classic plants (not registered, dormant,
unprotected, spike, night, foreign IP, slow), the misused accounts of ``ATTACKS``, and idle entries
for the rest — a SQLite access log over ``--days`` days (indexes on ts and (account, ts), ANALYZE;
``--activity`` scales the day and night workers' volume so that 10,000 accounts make ~10 M events)
and a zipped register extract. Then runs the shipped playbook **in a child process**, so that its
peak memory (ru_maxrss) is the run's own, and prints its wall time, peak RSS and phases, next to
plain baselines doing the same work bare — a paged search of the same attributes (python-ldap), the same
three ``GROUP BY`` queries fetched with sqlite3, a line count of the extract — and their ratios; then
the ground truth at scale.

**Ground truth** (``--seeds``). Per seed, a platform of ``--normal`` accounts plus ``ATTACKS``
(compromised 10, 30, 45 and 60 days before the run, on day, night-shift and emergency accounts) and
the access-log plants; only the access-log checks of the shipped playbook run (no directory needed).
Prints, per seed and in total: misused accounts found (and by which checks), the error on the day
each misuse began (every check that dates it), normal accounts flagged.
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
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import write_site  # noqa: E402
from tests.testbed.hygiene_data import (  # noqa: E402
    ATTACKS,
    MISUSE_CHECKS,
    NORMAL_PROFILES,
    PLANTS,
    HygieneSlapd,
    Scenario,
    build_scenario,
    write_access_log,
    write_directory_ldif,
    write_register,
)
from tourniquet.config import load_site  # noqa: E402

PLAYBOOK = ROOT / "playbooks" / "hygiene.yaml"
#: What the hygiene sweep reads per entry: the baseline reads the same, and does nothing with it.
SWEPT = ["uid", "employeeNumber", "pwdLastSuccess", "authTimestamp", "createTimestamp", "pwdAccountLockedTime",
         "pwdPolicySubentry"]
NORMAL = {name for name, _ in NORMAL_PROFILES}
ACCESS_PLANTS = {name: PLANTS[name] for name in ("spike", "night", "foreign_ip", "slow")}

CHILD = """
import json, resource, sys, time
from tourniquet.hygiene import load_hygiene_text, run_hygiene
started = time.monotonic()
playbook = load_hygiene_text(open(sys.argv[1][1:]).read()) if sys.argv[1].startswith("@") else sys.argv[1]
result = run_hygiene(playbook, sys.argv[2], as_of=sys.argv[3], register=sys.argv[4] or None, respond=sys.argv[5] == "1")
seconds = time.monotonic() - started
found = []
for f in result.iter_findings():
    if f.kind != "dormant" or len(found) < 200_000:
        found.append([f.account, f.kind, f.evidence.get("started")])
print(json.dumps({"seconds": seconds, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "swept": result.accounts_swept, "findings": result.finding_count, "found": found,
                  "timings": result.timings, "checks": result.checks, "responses": len(result.responses)}))
"""


def bare_paged_search(config: Any) -> int:
    """Every entry, 500 a page, the swept attributes: python-ldap (libldap) and nothing else."""
    import ldap
    from ldap.controls.pagedresults import SimplePagedResultsControl

    connection = ldap.initialize(config.url)
    connection.simple_bind_s(config.bind_dn, config.bind_password.get())
    page = SimplePagedResultsControl(True, size=500, cookie=b"")
    count = 0
    while True:
        message = connection.search_ext(config.base_dn, ldap.SCOPE_SUBTREE, config.user_filter, SWEPT, serverctrls=[page])
        _, data, _, controls = connection.result3(message)
        count += sum(1 for dn, _ in data if dn)
        cookie = next((c.cookie for c in controls if c.controlType == SimplePagedResultsControl.controlType), b"")
        if not cookie:
            break
        page.cookie = cookie
    connection.unbind_s()
    return count


def run_child(playbook: str, site: Path, as_of: str, register: str, respond: bool) -> dict[str, Any]:
    run = subprocess.run([sys.executable, "-c", CHILD, playbook, str(site), as_of, register, "1" if respond else "0"],
                         capture_output=True, text=True, cwd=ROOT)
    if run.returncode != 0:
        raise SystemExit(run.stderr[-4000:])
    return json.loads(run.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def judge(scenario: Scenario, found: list[list[Any]]) -> dict[str, Any]:
    """Planted cases found or missed, misused accounts found (and when they began), normal accounts flagged."""
    roles = {a.uid: a.role for a in scenario.accounts}
    kinds: dict[str, set[str]] = {}
    for account, kind, _ in found:
        kinds.setdefault(kind, set()).add(account)
    missed = {k: sorted(e - kinds.get(k, set())) for k, e in scenario.expected.items() if e - kinds.get(k, set())}
    flagged = sorted({(u, k, roles.get(u, "?")) for u, k, _ in found if roles.get(u) in NORMAL})
    attacks: dict[str, dict[str, Any]] = {}
    for uid, attack in scenario.attacks.items():
        mine = [(k, s) for u, k, s in found if u == uid]
        errors = [abs((date.fromisoformat(s) - attack.start).days) for _, s in mine if s]
        attacks[uid] = {"plan": f"{attack.plan.host} {attack.plan.days_ago}d", "checks": sorted({k for k, _ in mine}),
                        "misuse_found": bool({k for k, _ in mine} & MISUSE_CHECKS),
                        "start_error_days": max(errors) if errors else None}
    return {"missed": missed, "flagged": flagged, "attacks": attacks}


def print_attacks(verdict: dict[str, Any]) -> None:
    for uid, info in verdict["attacks"].items():
        print(f"    {uid:12} {info['plan']:16} found: {'yes' if info['misuse_found'] else 'NO '}  start error "
              f"{info['start_error_days']} day(s)  by {', '.join(info['checks']) or '-'}")


# --------------------------------------------------------------------------- ground truth over seeds


def access_playbook(folder: Path) -> str:
    import yaml

    from tourniquet.hygiene.checks import CHECKS

    data = yaml.safe_load(PLAYBOOK.read_text(encoding="utf-8"))
    data["checks"] = [c for c in data["checks"] if CHECKS[c["check"]].kind == "access"]
    data.pop("respond", None)
    path = folder / "access.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return "@" + str(path)


def ground_truth(seeds: list[int], normal: int, days: int, activity: float) -> int:
    totals: Counter[str] = Counter()
    per_check: Counter[str] = Counter()
    errors: list[int] = []
    for seed in seeds:
        folder = Path(tempfile.mkdtemp(prefix=f"tourniquet-hygiene-seed{seed}-"))
        try:
            started = time.monotonic()
            scenario = build_scenario(normal, days=days, seed=seed, plants=ACCESS_PLANTS, attacks=ATTACKS,
                                      activity=activity)
            events = write_access_log(scenario, folder / "audit.sqlite", seed=seed + 10)
            generated = time.monotonic() - started
            site = folder / "tourniquet.yaml"
            site.write_text(json.dumps({
                "site": "bench", "state_dir": str(folder / "state"), "evidence_dir": str(folder / "evidence"),
                "audit": {"kind": "sqlite", "path": str(folder / "audit.sqlite"), "timeout": 600},
                "directory": {"url": "ldap://127.0.0.1:9", "allow_plaintext": True, "bind_dn": "cn=x",
                              "bind_password": {"env": "UNUSED"}, "base_dn": "ou=people,dc=x"}}), encoding="utf-8")
            report = run_child(access_playbook(folder), site, scenario.as_of.isoformat(), "", False)
            verdict = judge(scenario, report["found"])
            profiles = Counter(a.profile for a in scenario.accounts if a.role in NORMAL)
            print(f"seed {seed}: {normal:,} normal accounts ({', '.join(f'{n} {p}' for p, n in profiles.most_common())}), "
                  f"{events:,} events (generated in {generated:.0f}s); access checks {report['seconds']:.1f}s, "
                  f"peak RSS {report['rss_kb'] / 1024:.0f} MB")
            print(f"  plants missed: {verdict['missed'] or 'none'}; normal accounts flagged: {verdict['flagged'] or 'none'}")
            print_attacks(verdict)
            totals["normal"] += normal
            totals["flagged"] += len(verdict["flagged"])
            totals["plants_missed"] += sum(len(v) for v in verdict["missed"].values())
            for info in verdict["attacks"].values():
                totals["attacks"] += 1
                totals["attacks_found"] += info["misuse_found"]
                per_check.update(info["checks"])
                if info["start_error_days"] is not None:
                    errors.append(info["start_error_days"])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    within = sum(e <= 1 for e in errors)
    print(f"\nTOTAL over {len(seeds)} seeds: {totals['attacks_found']}/{totals['attacks']} misused accounts found by a "
          f"misuse check; start dated within a day for {within}/{len(errors)} (worst {max(errors, default=0)} days); "
          f"{totals['flagged']} of {totals['normal']:,} normal accounts flagged; {totals['plants_missed']} classic "
          f"plants missed")
    print("misused accounts found, per check: " + ", ".join(f"{k} {per_check[k]}/{totals['attacks']}"
                                                           for k in sorted(MISUSE_CHECKS)))
    ok = totals["attacks_found"] == totals["attacks"] and within == len(errors) == totals["attacks"] \
        and not totals["flagged"] and not totals["plants_missed"]
    return 0 if ok else 1


# --------------------------------------------------------------------------- scale


def bare_queries(database: Path, start: str, end: str, window_start: str) -> float:
    """The three aggregates the access checks read, fetched with plain sqlite3: the floor under them."""
    hour = "((CAST(substr(ts, 12, 2) AS INTEGER) + 1 + 24) % 24)"
    off = f"({hour} < 7 OR {hour} >= 20)"
    where = f"ts >= '{start}' AND ts < '{end}'"
    queries = [
        f"SELECT account, date(ts), COUNT(*), COUNT(DISTINCT patient_id), SUM(CASE WHEN {off} THEN 1 ELSE 0 END) "
        f"FROM access_log WHERE {where} GROUP BY account, date(ts)",
        f"SELECT account, source_ip, COUNT(*), SUM(CASE WHEN {off} THEN 1 ELSE 0 END), COUNT(DISTINCT CASE WHEN {off} "
        f"THEN date(ts) END), MIN(ts), MAX(ts), MIN(CASE WHEN {off} THEN ts END) FROM access_log WHERE {where} "
        f"AND source_ip IS NOT NULL GROUP BY account, source_ip",
        f"SELECT account, COUNT(DISTINCT CASE WHEN ts >= '{window_start}' THEN patient_id END) FROM access_log "
        f"WHERE {where} GROUP BY account",
    ]
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    started = time.monotonic()
    for sql in queries:
        for _ in connection.execute(sql):
            pass
    connection.close()
    return time.monotonic() - started


def scale(args: argparse.Namespace) -> int:
    folder = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="tourniquet-bench-hygiene-"))
    reuse = (folder / "audit.sqlite").exists() and (folder / "slapd" / "slapd.d").exists()
    planted = sum(count for count, _ in PLANTS.values()) + len(ATTACKS)
    idle = max(0, args.entries - args.normal - planted)
    server: HygieneSlapd | None = None
    try:
        started = time.monotonic()
        scenario = build_scenario(args.normal, idle=idle, days=args.days, attacks=ATTACKS, activity=args.activity)
        server = HygieneSlapd(scenario.directory.suffix, "bench-root", directory=folder / "slapd")
        if reuse:  # the same arguments make the same platform: only the generated files are reused
            events = sqlite3.connect(folder / "audit.sqlite").execute("SELECT COUNT(*) FROM access_log").fetchone()[0]
            register = sorted((folder / "register").glob("PS_LibreAcces_*.zip"))[-1]
        else:
            folder.mkdir(parents=True, exist_ok=True)
            ldif = write_directory_ldif(scenario, folder / "data.ldif")
            server.configure(ldif)
            ldif.unlink()
            events = write_access_log(scenario, folder / "audit.sqlite")
            register = write_register(scenario, folder / "register", extra=args.strangers, adeli=20_000)
        server.start(timeout=120)
        site_file = write_site(folder, server, scenario.directory,
                               audit={"kind": "sqlite", "path": str(folder / "audit.sqlite"), "timeout": 900},
                               directory={"timeout": 120})
        print(f"{'reused' if reuse else 'generated'} in {time.monotonic() - started:.0f}s: "
              f"{len(scenario.accounts) + idle:,} directory entries "
              f"({args.normal:,} normal, {planted} planted, {idle:,} idle), {events:,} access-log events over "
              f"{args.days} days, register {register.name} ({register.stat().st_size / 1e6:.1f} MB zipped)")

        # -- plain baselines
        site = load_site(site_file)
        t = time.monotonic()
        entries = bare_paged_search(site.directory)
        ldap_plain = time.monotonic() - t
        end = scenario.as_of.date().isoformat()
        start = (scenario.as_of.date() - timedelta(days=183)).isoformat()
        window_start = (scenario.as_of.date() - timedelta(days=28)).isoformat()
        sql_plain = bare_queries(folder / "audit.sqlite", start, end, window_start)
        t = time.monotonic()
        with zipfile.ZipFile(register) as archive, archive.open(archive.namelist()[0]) as handle:
            lines = sum(1 for _ in handle)
        register_plain = time.monotonic() - t
        print(f"baselines: paged search of {entries:,} entries {ldap_plain:.1f}s; the 3 GROUP BY queries fetched "
              f"bare {sql_plain:.1f}s; {lines:,} register lines counted {register_plain:.1f}s; "
              f"these three one after the other: {ldap_plain + sql_plain + register_plain:.1f}s")

        # -- the run, in a child process
        report = run_child(str(PLAYBOOK), site_file, scenario.as_of.isoformat(), str(register.parent), True)
        access = [c for c, info in report["checks"].items() if info["kind"] not in ("not_in_register", "dormant",
                                                                                      "unprotected")]
        print(f"hygiene run: {report['seconds']:.1f}s wall, peak RSS {report['rss_kb'] / 1024:.0f} MB, "
              f"{report['swept']:,} entries swept, {report['findings']:,} findings, {report['responses']} response "
              f"plan(s)")
        for name, seconds in report["timings"].items():
            print(f"  {name:40} {seconds:8.2f}s")
        sweep = report["timings"].get("directory sweep", 0.0)
        queries = sum(report["timings"].get(c, 0.0) for c in access)
        print(f"ratios: whole run / the bare baselines one after the other = "
              f"{report['seconds'] / (ldap_plain + sql_plain + register_plain):.2f}; directory sweep / paged search = "
              f"{sweep / ldap_plain:.2f}; the {len(access)} access checks (in a child process, during the sweep) / the bare "
              f"queries = {queries / sql_plain:.2f}; register load / line count = "
              f"{report['timings'].get('not-registered (prepare)', 0.0) / max(register_plain, 1e-9):.2f}")

        verdict = judge(scenario, report["found"])
        counts = Counter(kind for _, kind, _ in report["found"])
        print(f"findings per check: {dict(counts)} (dormant includes the {idle:,} idle entries)")
        print(f"classic plants missed: {verdict['missed'] or 'none'}; normal accounts flagged: "
              f"{verdict['flagged'] or 'none'}")
        print_attacks(verdict)
        return 0
    finally:
        if server is not None:
            server.stop()
        if args.keep or args.data:
            print(f"data kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", help="ground truth only: comma-separated generator seeds (e.g. 1,2,3,4,5)")
    parser.add_argument("--normal", type=int, default=10_000, help="normal accounts working in the access log")
    parser.add_argument("--days", type=int, default=100, help="days of access log (dormant plants need more than 90)")
    parser.add_argument("--activity", type=float, default=0.35, help="day and night workers' volume (1.0: tests')")
    parser.add_argument("--entries", type=int, default=1_000_000, help="directory entries (scale run)")
    parser.add_argument("--strangers", type=int, default=300_000, help="other practitioners in the register")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--data", help="scale run: generate into this folder and keep it, or reuse what a previous "
                                       "run with the same arguments generated there")
    args = parser.parse_args()
    if args.seeds:
        return ground_truth([int(x) for x in args.seeds.split(",")], args.normal, args.days, args.activity)
    return scale(args)


if __name__ == "__main__":
    sys.exit(main())

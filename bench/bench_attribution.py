"""Benchmark: attribution on planted attackers mixed with the owners' normal work, and ``since: auto``.

    nice .venv/bin/python bench/bench_attribution.py
    nice .venv/bin/python bench/bench_attribution.py --users 800 --attacked 40 --seed 9

A :mod:`tourniquet.demo.platform` log (three regions, 60,000 patients, 150 days): practitioners working as
they do (caseloads, new patients every day, night shifts, emergency departments, the VPN, late evenings, now
and then an evening at home on their own connection), and attackers planted on some accounts in four styles
(a new network at night, a new network in office hours, the hospital's own VPN at night, one day of mass
scraping), starting 10 to 60 days before the alert — each showing at least two of the three signs
attribution reads (new network, unusual hour, patient outside the caseload), as the issue plants them. A few
more accounts get a ``lookalike`` attacker (the owner's own workstation, at the owner's hours, patients
outside the caseload: one sign), reported apart, to show what attribution cannot see. The scope runs with
``since: auto`` on the attacked accounts and, to count false alarms, on as many clean ones. Printed:

- precision and recall of the accesses the scope calls anomalous, against the planted truth (every access
  in the attacked accounts' windows, owners' and attackers'), overall and per style;
- how far each detected start is from the planted one (the first planted access), and how many clean
  accounts were given an attack start;
- seconds against a bare baseline (the indexed count of the same windows' accesses), and peak RSS.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_scope import peak_rss_mb  # noqa: E402

from tourniquet.connectors.audit import AuditConfig, connect  # noqa: E402
from tourniquet.demo.platform import (  # noqa: E402
    LOOKALIKE,
    STYLES,
    build_platform,
    site_audit,
    write_platform_sqlite,
)

END = datetime(2025, 9, 8, tzinfo=timezone.utc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--attacked", type=int, default=24)
    parser.add_argument("--lookalikes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--data", default=str(REPO / "var" / "bench"))
    args = parser.parse_args()
    users = [f"ps{n:04d}" for n in range(args.users)]
    planted = users[3::max(1, args.users // (args.attacked + args.lookalikes))][:args.attacked + args.lookalikes]
    attacked, lookalikes = planted[:args.attacked], planted[args.attacked:]
    clean = [u for u in users if u not in planted][:len(attacked)]
    days_ago = [10 + (n * 7) % 51 for n in range(len(planted))]
    styles = [STYLES[n % len(STYLES)] for n in range(len(attacked))] + [LOOKALIKE] * len(lookalikes)
    platform = build_platform(users, planted, end=END, days=150, patients_per_region=20_000,
                              attack_days_ago=days_ago, styles=styles, seed=args.seed)
    folder = Path(args.data)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"attribution-{args.users}-{args.attacked}-{args.lookalikes}-{args.seed}.sqlite"
    started = time.perf_counter()
    truth: Counter[tuple[str, datetime, str, int | None]] = Counter()
    planted_start: dict[str, datetime] = {}
    accesses = list(platform.accesses())
    for a in accesses:
        if a.user in platform.plants:
            truth[(a.user, a.ts, a.ip, a.patient)] += 1_000_000 if a.planted else 1
            if a.planted and (a.user not in planted_start or a.ts < planted_start[a.user]):
                planted_start[a.user] = a.ts
    if not path.exists():
        write_platform_sqlite(platform, path.with_suffix(".partial"), accesses)
        path.with_suffix(".partial").rename(path)
    print(f"{len(accesses):,} accesses, {len(users)} accounts, {len(attacked)} attacked "
          f"({', '.join(STYLES)}) and {len(lookalikes)} {LOOKALIKE}, built in {time.perf_counter() - started:.0f} s")
    del accesses

    client = connect(AuditConfig.model_validate(site_audit(kind="sqlite", path=str(path))), state_dir=None)
    started = time.perf_counter()
    plan = client.plan(attacked, "auto", END)
    scope = client.scope(plan, on_subject=lambda subject: None)
    outcome = judge(client, plan, platform, truth)
    seconds = time.perf_counter() - started
    look_plan = client.plan(lookalikes, "auto", END) if lookalikes else None
    look = judge(client, look_plan, platform, truth) if look_plan else Counter()
    clean_plan = client.plan(clean, "auto", END)
    false_starts = [a for a in clean if clean_plan.starts[a] is not None]

    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    base_started = time.perf_counter()
    for account, span in plan.windows.exposure.items():
        connection.execute("SELECT COUNT(*), COUNT(DISTINCT id_patient) FROM journal_acces WHERE utilisateur = ? "
                           "AND horodatage >= ? AND horodatage < ?",
                           (account, span.start.strftime("%Y-%m-%d %H:%M:%S"),
                            span.end.strftime("%Y-%m-%d %H:%M:%S"))).fetchone()
    baseline = time.perf_counter() - base_started

    precision, recall, attacks, owners = rates(outcome, None)
    print(f"\nanomalous accesses: precision {precision:.4f}, recall {recall:.4f} "
          f"({attacks:,} planted accesses among {owners:,} of the owners' own in the windows)")
    for style in STYLES:
        p, r, a, o = rates(outcome, style)
        print(f"  {style:10} precision {p:.4f}  recall {r:.4f}  ({a:,} planted, {o:,} owners')")
    if look_plan is not None:
        p, r, a, o = rates(look, None)
        found = sum(1 for u in lookalikes if look_plan.starts[u] is not None)
        print(f"  {LOOKALIKE:10} precision {p:.4f}  recall {r:.4f}  ({a:,} planted, {o:,} owners'; one sign only: "
              f"not expected to be seen; starts found {found}/{len(lookalikes)})")
    gaps = {a: abs(plan.starts[a].first_anomalous - planted_start[a])  # type: ignore[union-attr, operator]
            for a in attacked if plan.starts[a] is not None}
    missed = [a for a in attacked if plan.starts[a] is None]
    within = sum(1 for g in gaps.values() if g <= timedelta(days=1))
    print(f"\nsince: auto: {within}/{len(attacked)} planted starts found within a day "
          f"(largest gap {max(gaps.values(), default=timedelta(0))}); not found: {missed or 'none'}")
    for account, gap in sorted(gaps.items()):
        if gap > timedelta(days=1):
            found = plan.starts[account].first_anomalous  # type: ignore[union-attr]
            print(f"  {account} ({platform.plants[account].style}): planted {planted_start[account]:%Y-%m-%d %H:%M}, "
                  f"found {found:%Y-%m-%d %H:%M}")
    print(f"clean accounts given an attack start: {len(false_starts)}/{len(clean)} {false_starts or ''}")
    print(f"\nscope + frozen events: {seconds:.2f} s for {scope.total.events:,} accesses "
          f"({seconds / max(baseline, 1e-6):.0f}x the bare indexed count, {baseline:.3f} s); "
          f"peak RSS of this process (generation included) {peak_rss_mb():.0f} MB")
    client.close()


def judge(client: Any, plan: Any, platform: Any, truth: Counter[Any]) -> Counter[tuple[str, bool, bool]]:
    """(style, planted, called anomalous) → accesses, over every access of the plan's windows."""
    outcome: Counter[tuple[str, bool, bool]] = Counter()
    for event in client.events(plan):
        key = (event.account, event.timestamp, event.source_ip or "", int(event.subject) if event.subject else None)
        planted = truth.get(key, 0) >= 1_000_000
        outcome[(platform.plants[event.account].style, planted, bool(event.anomalous))] += 1
    return outcome


def rates(outcome: Counter[tuple[str, bool, bool]], style: str | None) -> tuple[float, float, int, int]:
    """Precision, recall, planted accesses, owners' accesses (for one style, or all)."""
    tp = sum(n for (s, p, a), n in outcome.items() if p and a and style in (None, s))
    fp = sum(n for (s, p, a), n in outcome.items() if not p and a and style in (None, s))
    fn = sum(n for (s, p, a), n in outcome.items() if p and not a and style in (None, s))
    owners = sum(n for (s, p, _), n in outcome.items() if not p and style in (None, s))
    return tp / max(1, tp + fp), tp / max(1, tp + fn), tp + fn, owners


if __name__ == "__main__":
    main()

"""``--site`` given several times: ``run``, ``plan``, ``undo``, ``recover`` and ``evidence verify`` across regions.

One incident, each region its own part (:mod:`tourniquet.engine.regions_run`, :mod:`tourniquet.engine.regions_after`); what is printed says, region
by region, what happened and what is left to do, then the national summary. The command modules call
these when they are given more than one site.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from tourniquet.cli.common import hide_temporary_server_notes, say_exit, use_local_server
from tourniquet.cli.progress import TerminalProgress, quiet_prefect_console
from tourniquet.regional import current_region

__all__ = ["run_across", "plan_across", "false_alarm_by", "undo_across", "recover_across", "verify_across", "print_national_run"]


class RegionsProgress:
    """One bar for every region's run: the mean of their progress, and what each is doing."""

    def __init__(self, progress: TerminalProgress, regions: int) -> None:
        self.progress = progress
        self.regions = max(1, regions)
        self.done: dict[str, float] = {}
        self.doing: dict[str, str] = {}

    def __call__(self, percent: float, what: str) -> None:
        region = current_region()
        if not region:
            return
        self.done[region], self.doing[region] = percent, what
        self.progress.update(sum(self.done.values()) / self.regions,
                             ", ".join(f"{name}: {self.doing[name]}" for name in sorted(self.doing)))


def print_national_run(result: dict[str, Any]) -> None:
    """Region by region, the refusals, then the national summary."""
    label = "PLAN (dry run, nothing changed)" if result["dry_run"] else "RUN"
    outcome = result["outcome"]
    print(f"{label}: {result['playbook']} incident {result['incident']} across {len(result['regions'])} sites: "
          f"{outcome['headline']}")
    width = max(len(r["region"]) for r in result["regions"])
    for region in result["regions"]:
        status = f"{region['status']} (by an earlier run: not run again)" if region.get("skipped") else region["status"]
        accounts = region.get("accounts") or []
        line = f"  {region['region']:{width}}  {status}"
        if accounts:
            line += f": {len(accounts)} account(s): {', '.join(accounts)}"
        if region.get("error"):
            line += f" — {region['error']}"
        print(line)
        if region.get("headline"):
            print(f"  {'':{width}}  {region['headline']}")
        for refusal in region.get("refused") or []:
            print(f"  {'':{width}}  refused {refusal['account']}: {refusal['reason']}")
        if region.get("report"):
            print(f"  {'':{width}}  report: {region['report']}")
    for line in outcome["lines"][1:]:
        print(f"  {line}")
    for why in result["refused"].values():
        print(f"  refused  {why}")
    for why in result["waiting"].values():
        print(f"  waiting  {why}")
    for note in result["notes"]:
        print(f"  note     {note}")
    national = result.get("national")
    if national:
        people = f"{national['people']} people: " if national["exact"] else ""
        print(f"  national: {people}{national['explanation']}")
        print(f"            seen in more than one region (counted once): {national['in_several_regions']}")
        print(f"            {national['folder']}, sealed root {national['root']}")
    elif result["dry_run"]:
        planned = {r["region"]: (r.get("scope") or {}).get("people") for r in result["regions"]}
        known = {name: people for name, people in planned.items() if isinstance(people, int)}
        if known:
            print(f"  people (plan): {', '.join(f'{name} {people}' for name, people in known.items())}; nationally at "
                  f"most {sum(known.values())} (the real run counts each person once)")


def run_across(args: argparse.Namespace, inputs: dict[str, Any], sites: list[str]) -> int:
    """``tourniquet run`` with several sites: the ``tourniquet-regions`` flow, a subflow per region."""
    server = use_local_server(sites[0])
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from tourniquet.cli.prefect_api import drain_prefect_queues
    from tourniquet.flows.artifacts import progress_listener
    from tourniquet.flows.regions import run_regions
    from tourniquet.logs import configure_logging

    configure_logging()
    hide_temporary_server_notes()
    progress = TerminalProgress(f"{'plan' if args.dry_run else 'run'} {args.playbook} in {len(sites)} regions",
                                first="starting a temporary Prefect server" if server.kind == "temporary" else "")
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), \
            quiet_prefect_console(progress.enabled), progress, progress_listener(RegionsProgress(progress, len(sites))):
        server.start()
        state = run_regions(args.playbook, sites, inputs, dry_run=args.dry_run, incident=args.incident or "",
                            national_dir=args.national_dir or "", return_state=True)
        result = state.result(raise_on_failure=False)
        status = result["outcome"]["headline"] if isinstance(result, dict) else "failed"
        progress.update(99.0, f"{status}; sending the run's events to Prefect")
        drain_prefect_queues()
        progress.update(100.0, status)
    print(server.describe(), file=sys.stderr)
    if not isinstance(result, dict):
        print(f"FAILED: {result if isinstance(result, Exception) else state.message or state.name}", file=sys.stderr)
        return 1
    return _said(result)


def _said(result: dict[str, Any]) -> int:
    """Print the run across sites, headline first; its exit code is the merged outcome's (as for one site)."""
    print_national_run(result)
    code = int(result["outcome"]["exit_code"])
    say_exit(code, result["outcome"]["headline"], bool(result["dry_run"]))
    return code


def plan_across(args: argparse.Namespace, inputs: dict[str, Any], sites: list[str]) -> int:
    """``tourniquet plan`` with several sites: every region's plan at once, no Prefect, nothing changed."""
    from tourniquet.engine.regions_run import execute_across
    from tourniquet.flows.regions import national_run_dict

    run = execute_across(args.playbook, inputs, sites, dry_run=True, incident=args.incident,
                         national_dir=args.national_dir)
    return _said(national_run_dict(run))


def false_alarm_by(args: argparse.Namespace) -> str:
    """Who decided the concluded incident was a false alarm after all (``--false-alarm-after-all --by NAME``)."""
    return (args.by or "").strip() if getattr(args, "false_alarm_after_all", False) else ""


def undo_across(args: argparse.Namespace, sites: list[str], password_gone: Callable[[str], str]) -> int:
    """``tourniquet undo`` with several sites: each region that holds a part of the incident."""
    from tourniquet.engine.regions_after import undo_across as undo

    failed = 0
    for entry in undo(args.incident, sites, national_dir=args.national_dir, false_alarm_by=false_alarm_by(args)):
        if entry.result is None:
            print(f"[{entry.region}] {entry.error}")
            failed += "no part of incident" not in (entry.error or "")
            continue
        entries = entry.result["entries"]
        for change in entries:
            print(f"[{entry.region}]  {change['status']:6} {change['target']}: undo {change['operation']} "
                  f"via {change['action']}")
        for account in entry.result["replaced"]:
            print(f"[{entry.region}]  kept   {account}: {password_gone(account)}")
        bad = [e for e in entries if e["status"] in ("failed", "deferred")]
        failed += bool(bad)
        print(f"[{entry.region}] undo {args.incident}: {len(entries) - len(bad)} reversed or already reversed, "
              f"{len(bad)} failed or deferred")
    return 1 if failed else 0


def recover_across(args: argparse.Namespace, sites: list[str], approver: Any) -> int:
    """``tourniquet recover`` with several sites: each account in the region that contained it."""
    from tourniquet.engine.regions_after import recover_across as recover
    from tourniquet.errors import TourniquetError
    from tourniquet.handover import handover

    try:
        with handover(args.incident, args.password_file) as box:
            results = recover(args.incident, args.account, sites, operator=args.operator or "",
                              investigation_approver=approver,
                              replace_owner_password=getattr(args, "replace_owner_password", False))
            passwords = box.take()
    except TourniquetError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    failed = 0
    for entry in results:
        if entry.result is None:
            print(f"[{entry.region}] FAILED: {entry.error}")
            failed += 1
            continue
        summary = entry.result.summary
        print(f"[{entry.region}] RECOVER: incident {summary.incident}: {summary.status}"
              + (f" — {summary.error}" if summary.error else ""))
        for change in summary.changes:
            if change.outcome != "noop":
                print(f"[{entry.region}]   {change.outcome:8} {change.target}: {change.operation}")
        print(f"[{entry.region}]   one-time password: {entry.result.handed_to}")
        print(f"[{entry.region}]   report:  {entry.result.report}")
        failed += summary.status != "completed"
    if passwords:
        print("\nOne-time password(s), shown this once: read it to the owner, who must choose a new one at the "
              "first login. It is not kept anywhere.")
        out = sys.stdout
        show = getattr(out, "write_unmasked", out.write)
        for account, password in sorted(passwords.items()):
            show(f"  {account}: {password}\n")
        out.flush()
    return 1 if failed else 0


def verify_across(args: argparse.Namespace, sites: list[str]) -> int:
    """``tourniquet evidence verify`` with several sites: each region's bundle, then the national summary."""
    from tourniquet.engine.regions_after import verify_across as verify

    worst = 0
    for entry in verify(args.incident, sites, national_dir=args.national_dir, anchor_path=args.anchor_log):
        if entry.result is None:
            print(f"[{entry.region}] {entry.error}")
            continue
        verdict = entry.result
        if verdict.facts.get("missing"):
            if entry.region == "national":  # the regions were run one by one: nothing national to check
                print(f"[national] no national summary of incident {args.incident} (and none anchored)")
                continue
            print(f"[{entry.region}] no evidence folder (and none anchored)")
            worst = max(worst, 1)
            continue
        for finding in verdict.findings:
            print(f"[{entry.region}] TAMPERED {finding}")
        for finding in verdict.unsealed:
            print(f"[{entry.region}] UNSEALED {finding}")
        for note in verdict.notes:
            print(f"[{entry.region}] note: {note}")
        state = ("TAMPERED" if verdict.findings else "NOT SEALED" if verdict.unsealed else "intact")
        print(f"[{entry.region}] {state} ({verdict.facts.get('manifests', 0)} manifest(s)), root "
              f"{verdict.facts.get('root', '—')}")
        code = verdict.exit_code
        worst = 1 if 1 in (worst, code) else max(worst, code)
    print(f"evidence {args.incident} across {len(sites)} sites: "
          + {0: "intact", 1: "TAMPERED", 3: "NOT SEALED"}.get(worst, str(worst)))
    return worst

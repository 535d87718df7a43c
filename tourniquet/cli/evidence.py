"""``tourniquet evidence verify|seal INCIDENT``: check (or seal) an incident's evidence bundle.

``verify`` exits 0 when the bundle is intact, 1 when anything was tampered with, 3 when journal
records follow the last seal (a run that did not finish): a person reviews them, then ``seal``.
"""

from __future__ import annotations

import argparse
from typing import Any

from tourniquet.cli.common import incident_argument, one_site, open_site, site_argument, sites_of

__all__ = ["register"]


def cmd_verify(args: argparse.Namespace) -> int:
    from tourniquet.engine.sealing import verify_incident

    sites = sites_of(args)
    if len(sites) > 1:
        from tourniquet.cli.regions import verify_across

        return verify_across(args, sites)
    with open_site(one_site(args)) as site:
        verdict = verify_incident(site, args.incident, anchor_path=args.anchor_log)
        folder = site.incident_dir(args.incident)
    if verdict.facts.get("missing"):
        print(f"no evidence folder for incident {args.incident} in {folder.parent} (and none anchored)")
        return 1
    for finding in verdict.findings:
        print(f"TAMPERED {finding}")
    for finding in verdict.unsealed:
        print(f"UNSEALED {finding}")
    for note in verdict.notes:
        print(f"note: {note}")
    facts = verdict.facts
    if verdict.findings:
        print(f"evidence {args.incident}: {len(verdict.findings)} problem(s) in {folder}")
    elif verdict.unsealed:
        print(f"evidence {args.incident}: NOT SEALED — what is listed above came after the last seal "
              f"({facts['manifests']} manifest(s)). Review it, then: tourniquet evidence seal {args.incident}")
    else:
        where = f"anchor log {facts['anchor_log']}"
        if facts.get("ticket"):
            where += f" and {facts['ticket']}"
        print(f"evidence {args.incident}: intact ({facts['manifests']} manifest(s), {facts['journal_records']} "
              f"journal records; every seal in the {where})")
    if facts.get("root"):
        print(f"  root: {facts['root']}")
    return verdict.exit_code


def cmd_seal(args: argparse.Namespace) -> int:
    from tourniquet.engine.sealing import seal_incident
    from tourniquet.evidence import SealFailed

    with open_site(args.site) as site:
        if not site.incident_dir(args.incident).is_dir():
            print(f"no evidence folder {site.incident_dir(args.incident)}")
            return 1
        try:
            sealed = seal_incident(site, args.incident, note=args.note or "sealed by hand")
        except SealFailed as exc:
            print(f"NOT SEALED: {exc}")
            return 1
    for problem in sealed.findings:
        print(f"TAMPERED {problem}")
    for name in sealed.completed:
        print(f"completed the interrupted seal {name}")
    for reviewed in sealed.manifest.get("reviewed", []):
        print(f"sealed   {reviewed}")
    print(f"sealed {args.incident}: manifest {sealed.sequence:04d}, root {sealed.root}")
    return 1 if sealed.findings else 0


def register(sub: Any) -> None:
    """Add the ``evidence`` command to the CLI's subparsers."""
    evidence = sub.add_parser("evidence", help="verify or seal an incident's evidence bundle")
    actions = evidence.add_subparsers(dest="evidence_command", required=True)
    verify = actions.add_parser("verify", help="check every file, manifest, journal line and anchor; exit 1 if "
                                               "tampered, 3 if records follow the last seal")
    seal = actions.add_parser("seal", help="write a new manifest after review (problems found are recorded in it)")
    for command, func in ((verify, cmd_verify), (seal, cmd_seal)):
        incident_argument(command)
        site_argument(command, several=command is verify)
        command.set_defaults(func=func)
    verify.add_argument("--anchor-log", help="the anchor log to check against (default: <state_dir>/"
                                             "evidence-anchors.jsonl)")
    seal.add_argument("--note", help="why it is sealed now")

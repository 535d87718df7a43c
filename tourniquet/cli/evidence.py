"""``tourniquet evidence verify|seal INCIDENT``: check (or seal) an incident's evidence bundle."""

from __future__ import annotations

import argparse
from typing import Any

from tourniquet.cli.common import site_argument

__all__ = ["register"]


def _folder(args: argparse.Namespace) -> Any:
    from tourniquet.config import load_site

    return load_site(args.site).evidence_dir / args.incident


def cmd_verify(args: argparse.Namespace) -> int:
    from tourniquet.evidence import verify

    folder = _folder(args)
    findings, facts = verify(folder)
    for finding in findings:
        print(f"TAMPERED {finding}")
    if findings:
        print(f"evidence {args.incident}: {len(findings)} problem(s) in {folder}")
        return 1
    unsealed = f", {facts['unsealed_records']} journal record(s) after the last seal" if facts["unsealed_records"] else ""
    print(f"evidence {args.incident}: intact ({facts['manifests']} manifest(s), "
          f"{facts['journal_records']} journal records{unsealed})")
    print(f"  root: {facts['root']}")
    return 0


def cmd_seal(args: argparse.Namespace) -> int:
    from tourniquet.evidence import seal

    folder = _folder(args)
    if not folder.is_dir():
        print(f"no evidence folder {folder}")
        return 1
    manifest = seal(folder, incident=args.incident, note=args.note or "sealed by hand")
    for problem in manifest["findings_at_seal"]:
        print(f"TAMPERED {problem}")
    print(f"sealed {args.incident}: manifest {manifest['sequence']:04d}, root {manifest['root']}")
    return 1 if manifest["findings_at_seal"] else 0


def register(sub: Any) -> None:
    """Add the ``evidence`` command to the CLI's subparsers."""
    evidence = sub.add_parser("evidence", help="verify or seal an incident's evidence bundle")
    actions = evidence.add_subparsers(dest="evidence_command", required=True)
    verify = actions.add_parser("verify", help="check every file, manifest and journal line; exit 1 if tampered")
    seal = actions.add_parser("seal", help="write a new manifest (problems found are recorded in it)")
    for command, func in ((verify, cmd_verify), (seal, cmd_seal)):
        command.add_argument("incident")
        site_argument(command)
        command.set_defaults(func=func)
    seal.add_argument("--note", help="why it is sealed now")

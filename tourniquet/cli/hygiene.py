"""``tourniquet hygiene``: run a hygiene playbook without Prefect (the flow is for schedules)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tourniquet.cli.common import site_argument

__all__ = ["register", "is_hygiene_file", "validate_hygiene"]


def is_hygiene_file(path: str) -> bool:
    """A hygiene playbook starts with ``hygiene:`` (a response playbook with ``playbook:``).

    Reads at most the first 64 KiB of a regular file: ``validate`` is given hostile paths too
    (``/dev/zero``, a pipe), and the loader reports those by name.
    """
    try:
        if not Path(path).is_file():
            return False
        with Path(path).open("rb") as handle:
            head = handle.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        return False
    for line in head.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.startswith("hygiene:")
    return False


def validate_hygiene(path: str) -> int | None:
    """For ``tourniquet validate``: None when the file is not a hygiene playbook, else 0 (ok) or 1."""
    if not is_hygiene_file(path):
        return None
    from tourniquet.errors import PlaybookErrors
    from tourniquet.hygiene.loader import load_hygiene

    try:
        print(f"{path}: ok ({len(load_hygiene(path).playbook.checks)} hygiene checks)")
        return 0
    except PlaybookErrors as exc:
        for error in exc.errors:
            print(str(error), file=sys.stderr)
        return 1


def cmd_hygiene(args: argparse.Namespace) -> int:
    from tourniquet.hygiene.runner import run_hygiene
    from tourniquet.logs import configure_logging

    configure_logging()
    result = run_hygiene(args.playbook, args.site, as_of=args.as_of, register=args.register,
                         respond=not args.no_respond)
    print(f"HYGIENE {result.playbook}: {result.accounts_swept} accounts swept, {result.finding_count} findings")
    for check_id, info in result.checks.items():
        error = f" — {info['error']}" if info.get("error") else ""
        print(f"  {check_id:20} {info['status']:10} {info['findings']:6}{error}")
    for response in result.responses:
        print(f"  {response['mode']:8} {response['playbook']} for {len(response['accounts'])} account(s): "
              f"{response.get('status')}")
    print(f"  findings: {result.findings_file}")
    print(f"  summary:  {result.markdown_file}")
    return 1 if any(info["status"] == "failed" for info in result.checks.values()) else 0


def register(sub: Any) -> None:
    command = sub.add_parser("hygiene", help="run a hygiene playbook: register, dormant, unprotected, unusual access")
    command.add_argument("playbook", nargs="?", default="hygiene", help="path or name (default: hygiene)")
    site_argument(command)
    command.add_argument("--register", help="register extract (.txt, .zip or folder), overrides the playbook")
    command.add_argument("--as-of", help="reference time, ISO (default: now)")
    command.add_argument("--no-respond", action="store_true", help="do not plan response runs")
    command.set_defaults(func=cmd_hygiene)

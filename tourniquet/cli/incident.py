"""``tourniquet undo|reinstate INCIDENT``: give an incident's accounts back after a false alarm."""

from __future__ import annotations

import argparse
from typing import Any

from tourniquet.cli.common import incident_argument, open_site, site_argument

__all__ = ["register"]


def cmd_undo(args: argparse.Namespace) -> int:
    from tourniquet.engine.undo import undo_incident

    with open_site(args.site) as site:
        result = undo_incident(args.incident, site)
    for entry in result:
        print(f"  {entry['status']:6} {entry['target']}: undo {entry['operation']} via {entry['action']}")
    failed = [e for e in result if e["status"] in ("failed", "deferred")]
    print(f"undo {args.incident}: {len(result) - len(failed)} reversed or already reversed, {len(failed)} failed or deferred")
    return 1 if failed else 0


def cmd_reinstate(args: argparse.Namespace) -> int:
    from tourniquet.engine.reinstate import reinstate_incident

    with open_site(args.site) as site:
        results = reinstate_incident(args.incident, site)
    for entry in results:
        extra = " (password was replaced: the practitioner needs a reset)" if entry.get("password_replaced") else ""
        print(f"  {entry['status']:6} {entry['target']}: {entry['operation']}{extra} {entry.get('error', '')}".rstrip())
    failed = sum(1 for r in results if r["status"] == "failed")
    print(f"reinstate {args.incident}: {len(results) - failed} reinstated or already as recorded, {failed} refused/failed")
    return 1 if failed else 0


def register(sub: Any) -> None:
    undo = sub.add_parser("undo", help="reverse every change an incident made (false alarm)")
    incident_argument(undo)
    site_argument(undo)
    undo.set_defaults(func=cmd_undo)

    reinstate = sub.add_parser("reinstate", help="put an incident's accounts back as their snapshots recorded them")
    incident_argument(reinstate)
    site_argument(reinstate)
    reinstate.set_defaults(func=cmd_reinstate)

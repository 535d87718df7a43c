"""``tourniquet incidents [show INCIDENT | …]``: the incidents of a site (or of several regions), and one's story.

A group of subcommands: each module that adds one appends its ``register`` to :data:`REGISTRARS`
(``incidents show`` is here; ``incidents notified`` comes from the notifications). States and
stories are folded from the journals (:mod:`tourniquet.lifecycle`), never stored apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from tourniquet.cli.common import incident_id, open_site, site_argument, sites_of

__all__ = ["register", "REGISTRARS", "cmd_incidents", "cmd_show", "cmd_close"]

#: Each adds one ``incidents`` subcommand to the group's subparsers (``registrar(subparsers)``).
REGISTRARS: list[Callable[[Any], None]] = []


def _folds(args: argparse.Namespace) -> list[Any]:
    from tourniquet.lifecycle import incidents_of

    sites: list[str | None] = list(sites_of(args)) or [None]
    return incidents_of(sites)


def cmd_incidents(args: argparse.Namespace) -> int:
    from tourniquet.lifecycle import incident_row

    rows = [incident_row(incident) for incident in _folds(args)]
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False, default=str))
        return 0
    if not rows:
        print("no incident on this site")
        return 0
    header = ("incident", "state", "named", "contained", "people", "opened", "last change", "ticket", "regions")
    table = [header] + [(r["incident"], r["state"], str(r["accounts_named"]), str(r["accounts_contained"]),
                         "" if r["people_in_scope"] is None else str(r["people_in_scope"]), r["opened"][:16],
                         r["last_change"][:16], r["ticket"] or "", ",".join(r["regions"])) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from tourniquet.lifecycle import story_lines

    found = [incident for incident in _folds(args) if incident.id == args.incident]
    if not found:
        print(f"error: no incident {args.incident} on {'these sites' if len(sites_of(args)) > 1 else 'this site'}",
              file=sys.stderr)
        return 2
    for line in story_lines(found[0]):
        print(line)
    return 0


def _register_show(sub: Any) -> None:
    show = sub.add_parser("show", help="one incident's story in time order, each line from a journal record")
    show.add_argument("incident", type=incident_id, help="incident id")
    site_argument(show, several=True)
    show.set_defaults(func=cmd_show)


def cmd_close(args: argparse.Namespace) -> int:
    """Record that the incident is closed (who, why): the last state of its life."""
    from datetime import datetime, timezone

    from tourniquet.journal import Journal

    closed = 0
    paths: list[str | None] = list(sites_of(args)) or [None]
    for path in paths:
        with open_site(path) as site:
            folder = site.incident_dir(args.incident)
            if not (folder / "journal.jsonl").is_file():
                continue
            journal = Journal(folder / "journal.jsonl", incident=args.incident, run="close")
            journal.write("lifecycle", status="closed", by=args.by.strip(), note=args.note,
                          at=datetime.now(timezone.utc).isoformat())
            journal.commit()
            closed += 1
    if not closed:
        print(f"error: incident {args.incident} has no journal here: nothing to close", file=sys.stderr)
        return 2
    print(f"incident {args.incident}: closed by {args.by}")
    return 0


def _register_close(sub: Any) -> None:
    close = sub.add_parser("close", help="record that an incident is closed (after recover or undo)")
    close.add_argument("incident", type=incident_id, help="incident id")
    close.add_argument("--by", required=True, help="who closes it (written to the journal)")
    close.add_argument("--note", default="", help="why (ticket, decision)")
    site_argument(close, several=True)
    close.set_defaults(func=cmd_close)


REGISTRARS.extend([_register_show, _register_close])


def register(sub: Any) -> None:
    """Add the ``incidents`` group: the list, then each registered subcommand."""
    incidents = sub.add_parser("incidents", help="list the incidents (state, accounts, people in scope, ticket); "
                                                 "`incidents show INCIDENT` tells one's story")
    site_argument(incidents, several=True)
    incidents.add_argument("--json", action="store_true", help="one JSON object per incident")
    incidents.set_defaults(func=cmd_incidents)
    group = incidents.add_subparsers(dest="incidents_command", metavar="{show,…}")
    for registrar in REGISTRARS:
        registrar(group)

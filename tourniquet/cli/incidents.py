"""``tourniquet incidents [show | close | notified …]``: the incidents of a site (or of several regions).

The list: one row per incident (state, accounts named and contained, people in scope, opened, last
change, ticket, regions), then each incident's GDPR Art. 33 clock; ``--json`` for the rows. States
and stories are folded from the journals (:mod:`tourniquet.lifecycle`), never stored apart; the
clock from the same journals (:mod:`tourniquet.notices`). A group of subcommands: each module in
:data:`SUBCOMMANDS` and each function in :data:`REGISTRARS` adds its own (``show`` and ``close`` are
here, ``notified`` comes from :mod:`tourniquet.cli.filings`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from tourniquet.cli import filings
from tourniquet.cli.common import SITE_HELP, incident_id, open_site, site_argument, sites_of

__all__ = ["register", "REGISTRARS", "SUBCOMMANDS", "cmd_incidents", "cmd_show", "cmd_close"]

#: Modules that add subcommands under ``incidents`` (``register(incidents_subparsers)``).
SUBCOMMANDS = (filings,)
#: Functions that add one ``incidents`` subcommand each (``registrar(incidents_subparsers)``).
REGISTRARS: list[Callable[[Any], None]] = []


def _sites(args: argparse.Namespace) -> list[str | None]:
    return list(sites_of(args)) or [None]


def _clocks(sites: list[str | None], incidents: list[Any], now: datetime) -> list[tuple[str, str, str]]:
    """(incident, clock state, the clock in words), from the first site that holds each incident."""
    from tourniquet.notices.dispatch import incident_clock

    lines: list[tuple[str, str, str]] = []
    for path in sites:
        with open_site(path) as site:
            for incident in incidents:
                if any(line[0] == incident.id for line in lines):
                    continue
                if (site.incident_dir(incident.id) / "journal.jsonl").is_file():
                    clock = incident_clock(site, incident.id)
                    lines.append((incident.id, clock.state(now), clock.describe(now)))
    return lines


def cmd_incidents(args: argparse.Namespace) -> int:
    from tourniquet.lifecycle import incident_row, incidents_of

    now = args.at or datetime.now(timezone.utc)
    sites = _sites(args)
    found = incidents_of(sites, now)
    rows = [incident_row(incident) for incident in found]
    clocks = _clocks(sites, found, now)
    late = sum(state == "late" for _, state, _ in clocks)
    if args.json:
        by_id = {incident: {"state": state, "text": text} for incident, state, text in clocks}
        print(json.dumps([{**row, "art33": by_id.get(row["incident"])} for row in rows], indent=1,
                         ensure_ascii=False, default=str))
        return 1 if late else 0
    if not rows:
        print("no incident")
        return 0
    header = ("incident", "state", "named", "contained", "people", "opened", "last change", "ticket", "regions")
    table = [header] + [(r["incident"], r["state"], str(r["accounts_named"]), str(r["accounts_contained"]),
                         "" if r["people_in_scope"] is None else str(r["people_in_scope"]), r["opened"][:16],
                         r["last_change"][:16], r["ticket"] or "", ",".join(r["regions"])) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if clocks:
        print("\nGDPR Art. 33 (72 h):")
        for incident, state, text in clocks:
            print(f"{incident}  [{state}]  {text}")
    return 1 if late else 0


def cmd_show(args: argparse.Namespace) -> int:
    from tourniquet.lifecycle import incident_of, story_lines

    sites = _sites(args)
    found = incident_of(args.incident, sites)
    if found is None:
        print(f"error: no incident {args.incident} on {'these sites' if len(sites) > 1 else 'this site'}",
              file=sys.stderr)
        return 2
    for line in story_lines(found):
        print(line)
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    """Record that the incident is closed (who, why): the last state of its life."""
    from tourniquet.journal import Journal

    closed = 0
    for path in _sites(args):
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


def _register_show(sub: Any) -> None:
    show = sub.add_parser("show", help="one incident's story in time order, each line from a journal record")
    show.add_argument("incident", type=incident_id, help="incident id")
    site_argument(show, several=True)
    show.set_defaults(func=cmd_show)


def _register_close(sub: Any) -> None:
    close = sub.add_parser("close", help="record that an incident is closed (after recover or undo)")
    close.add_argument("incident", type=incident_id, help="incident id")
    close.add_argument("--by", required=True, help="who closes it (written to the journal)")
    close.add_argument("--note", default="", help="why (ticket, decision)")
    site_argument(close, several=True)
    close.set_defaults(func=cmd_close)


REGISTRARS.extend([_register_show, _register_close])


def _moment(text: str) -> datetime:
    from tourniquet.clock import parse_time

    moment = parse_time(text)
    if moment is None:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text[:40]!r}")
    return moment


def register(sub: Any) -> None:
    """Add the ``incidents`` group: the list, then each subcommand."""
    incidents = sub.add_parser("incidents", help="list the incidents (state, accounts, people in scope, ticket, "
                                                 "Art. 33 clock); `incidents show INCIDENT` tells one's story, "
                                                 "`incidents notified` records the filings")
    incidents.add_argument("--site", dest="incidents_site", action="append", metavar="FILE",
                           help=SITE_HELP + "; repeat it for an incident across several sites (regions)")
    incidents.add_argument("--json", action="store_true", help="one JSON object per incident")
    incidents.add_argument("--at", type=_moment, metavar="TIME",
                           help="show the clocks as of this ISO time (default: now), e.g. to check a reminder plan")
    incidents.set_defaults(func=_with_group_site(cmd_incidents, several=True))
    group = incidents.add_subparsers(dest="incidents_command", metavar="{show,close,notified}")
    for module in SUBCOMMANDS:
        module.register(group)
    for registrar in REGISTRARS:
        registrar(group)
    for parser in group.choices.values():  # `incidents --site S show …` means the same as `… show --site S`
        action = parser._option_string_actions.get("--site")
        several = action is not None and isinstance(action, argparse._AppendAction)
        parser.set_defaults(func=_with_group_site(parser.get_default("func"), several=several))


def _with_group_site(command: Callable[[argparse.Namespace], int], *, several: bool) -> Callable[[argparse.Namespace],
                                                                                                 int]:
    def run(args: argparse.Namespace) -> int:
        given = getattr(args, "incidents_site", None)
        if getattr(args, "site", None) is None and given:
            args.site = list(given) if several else given[0]
        return command(args)

    return run

"""``tourniquet incidents``: the site's incidents with their Art. 33 clock; ``incidents notified`` records filings.

A minimal group: each module in :data:`SUBCOMMANDS` adds its own subcommands to it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from tourniquet.cli import filings
from tourniquet.cli.common import SITE_HELP, open_site

__all__ = ["register", "cmd_incidents", "SUBCOMMANDS"]

#: Modules that add subcommands under ``incidents`` (``register(incidents_subparsers)``).
SUBCOMMANDS = (filings,)


def cmd_incidents(args: argparse.Namespace) -> int:
    from tourniquet.notices.dispatch import incident_clock

    now = args.at or datetime.now(timezone.utc)
    with open_site(args.incidents_site) as site:
        folder = site.config.evidence_dir
        incidents = sorted(p.parent.name for p in folder.glob("*/journal.jsonl")) if folder.is_dir() else []
        late = 0
        for incident in incidents:
            clock = incident_clock(site, incident)
            state = clock.state(now)
            late += state == "late"
            print(f"{incident}  [{state}]  {clock.describe(now)}")
    if not incidents:
        print("no incident")
    return 1 if late else 0


def _moment(text: str) -> datetime:
    from tourniquet.clock import parse_time

    moment = parse_time(text)
    if moment is None:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text[:40]!r}")
    return moment


def register(sub: Any) -> None:
    """Add the ``incidents`` group to the CLI's subparsers."""
    incidents = sub.add_parser("incidents", help="the incidents and their Art. 33 clock; `incidents notified` "
                                                 "records the filings")
    incidents.add_argument("--site", dest="incidents_site", help=SITE_HELP)
    incidents.add_argument("--at", type=_moment, metavar="TIME",
                           help="show the clocks as of this ISO time (default: now), e.g. to check a reminder plan")
    incidents.set_defaults(func=cmd_incidents)
    group = incidents.add_subparsers(dest="incidents_command")
    for module in SUBCOMMANDS:
        module.register(group)
    for parser in group.choices.values():  # `incidents --site S notified …` means the same as `… notified --site S`
        parser.set_defaults(func=_with_group_site(parser.get_default("func")))


def _with_group_site(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        if getattr(args, "site", None) is None:
            args.site = getattr(args, "incidents_site", None)
        return command(args)

    return run

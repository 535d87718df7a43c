"""``tourniquet audit check``: does the site's ``audit:`` vocabulary fit the platform's real log?

Connects read-only, checks every configured table and column against the real ones (a wrong name is
reported with the real names listed), then says what the log holds: how many accesses, from when to
when, each action code with the fields ``action_fields`` says it shows — and the codes it does not
list, which the scope would count as showing nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from tourniquet.cli.common import open_site, site_argument

__all__ = ["register"]


def cmd_check(args: argparse.Namespace) -> int:
    with open_site(args.site) as site:
        config = site.config.audit
        if config is None:
            print(f"the site {site.name!r} has no audit section")
            return 1
        client = site.audit  # connecting checks the table and columns
        where = config.path or config.dsn or config.url
        print(f"audit: {config.kind} {where}, table {config.table}: columns found")
        if config.subjects is not None:
            print(f"  subjects: table {config.subjects.table}, key {config.subjects.key}, "
                  f"fields {', '.join(config.subjects.fields)}: columns found")
        describe = getattr(client.source, "describe", None)
        if describe is None:
            print("  (counts are only computed for SQL logs)")
            return 0
        facts: dict[str, Any] = describe()
        print(f"  {facts['events']:,} accesses from {facts['first']} to {facts['last']}")
        if facts["subjects"] is not None:
            print(f"  {facts['subjects']:,} people in {config.subjects.table}")  # type: ignore[union-attr]
        unknown = 0
        for code, count in facts["action_codes"]:
            shown = client.vocabulary.fields(code, None) if config.action_fields is not None else None
            if config.action_fields is not None and (code or "") not in config.action_fields:
                unknown += 1
                print(f"  {code!s:24} {count:>12,}  NOT in action_fields: counted as showing nothing")
            else:
                print(f"  {code!s:24} {count:>12,}  {', '.join(shown) if shown else '(fields from the log)'}")
        return 1 if unknown else 0


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the access log: check the site's vocabulary against the real log")
    commands = audit.add_subparsers(dest="audit_command", required=True)
    check = commands.add_parser("check", help="check tables, columns and action codes; count what the log holds")
    site_argument(check)
    check.set_defaults(func=cmd_check)

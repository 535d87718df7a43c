"""``tourniquet incidents notified INCIDENT --cnil REF [--cert-sante REF] --by NAME``: the filings, journaled.

Once the CNIL filing is recorded, the deadlines flow stops reminding; ``tourniquet incidents`` shows it
filed (on time, or late).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from tourniquet.cli.common import incident_id, open_site, site_argument

__all__ = ["register", "cmd_notified"]


def cmd_notified(args: argparse.Namespace) -> int:
    from tourniquet.engine.notices import record_and_seal_filings
    from tourniquet.notices.dispatch import incident_clock

    with open_site(args.site) as site:
        records = record_and_seal_filings(site, args.incident, cnil=args.cnil, cert_sante=args.cert_sante, by=args.by)
        clock = incident_clock(site, args.incident)
    for record in records:
        print(f"incident {args.incident}: {record['authority']} filing {record['reference']} recorded by {record['by']}")
    print(clock.describe(datetime.now(timezone.utc)))
    return 0


def register(incidents: Any) -> None:
    """Add ``notified`` to the ``incidents`` group's subparsers."""
    notified = incidents.add_parser("notified", help="record the CNIL (Art. 33) and CERT Santé filings of an incident")
    notified.add_argument("incident", type=incident_id, help="incident id")
    notified.add_argument("--cnil", metavar="REF", help="the CNIL notification's reference")
    notified.add_argument("--cert-sante", metavar="REF", help="the ARS / CERT Santé declaration's reference")
    notified.add_argument("--by", required=True, help="who filed (your name, as the journal will show it)")
    site_argument(notified)
    notified.set_defaults(func=cmd_notified)

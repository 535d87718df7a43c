"""``tourniquet outbox [--deliver]``: what waits for the ticket system and the notification channels; deliver it."""

from __future__ import annotations

import argparse
from typing import Any

from tourniquet.cli.common import open_site, site_argument

__all__ = ["register"]


def cmd_outbox(args: argparse.Namespace) -> int:
    with open_site(args.site) as site:
        client = site.tickets
        if args.deliver:
            report = client.deliver()
            print(f"delivered {report['delivered']}, still waiting {report['pending']}")
        keys = client.outbox.keys()
        for key in keys:
            entries = client.outbox.pending(key)
            print(f"{key}: {len(entries)} waiting for {client.system}")
            for entry in entries:
                print(f"  {entry.seq:>4} {entry.operation:<8} queued {entry.queued_at}  ({entry.reason})")
        if not keys:
            print(f"outbox empty ({client.system})")
        return max(1 if keys and args.deliver else 0, _notifications(site, args.deliver))


def _notifications(site: Any, deliver: bool) -> int:
    """The messages that waited for a channel (their channel named, never its URL)."""
    from tourniquet.engine.notices import deliver_notifications

    notifier = site.notify
    if deliver and notifier.outbox.keys():
        report = deliver_notifications(site)
        print(f"notifications: delivered {report['delivered']}, still waiting {report['pending']}")
    keys = notifier.outbox.keys()
    for key in keys:
        entries = notifier.outbox.pending(key)
        print(f"{key}: {len(entries)} notification(s) waiting")
        for entry in entries:
            message = entry.payload.get("message", {})
            print(f"  {entry.seq:>4} {message.get('role', '?')} {message.get('kind', '?')} "
                  f"queued {entry.queued_at}  ({entry.reason})")
    return 1 if keys and deliver else 0


def register(sub: Any) -> None:
    """Add the ``outbox`` command to the CLI's subparsers."""
    outbox = sub.add_parser("outbox", help="list ticket writes and notifications waiting for their system; --deliver sends them")
    outbox.add_argument("--deliver", action="store_true", help="deliver now, in order (exit 1 if some still wait)")
    site_argument(outbox)
    outbox.set_defaults(func=cmd_outbox)

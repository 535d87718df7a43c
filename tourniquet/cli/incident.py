"""``tourniquet undo|reinstate|conclude|recover INCIDENT``: after containment, give the accounts back.

False alarm: ``undo`` or ``reinstate`` (the accounts as they were, but for the replaced password).
Real incident: ``conclude`` the investigation, then ``recover`` each account (a one-time password).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tourniquet.cli.common import incident_argument, one_site, open_site, site_argument, sites_of

__all__ = ["register"]


PASSWORD_GONE = ("the password was replaced by the containment: the old password cannot come back; "
                 "give the account back with `tourniquet recover INCIDENT --account ID`")


def cmd_undo(args: argparse.Namespace) -> int:
    from tourniquet.cli.regions import false_alarm_by
    from tourniquet.engine.recover import replaced_passwords
    from tourniquet.engine.undo import UndoRefused, undo_incident

    if args.false_alarm_after_all and not (args.by or "").strip():
        print("refusing: --false-alarm-after-all needs --by NAME (who decided it was a false alarm after all; "
              "journaled)", file=sys.stderr)
        return 2
    sites = sites_of(args)
    if len(sites) > 1:
        from tourniquet.cli.regions import undo_across

        return undo_across(args, sites, lambda account: PASSWORD_GONE.replace("INCIDENT", args.incident)
                           .replace("ID", account))
    with open_site(one_site(args)) as site:
        try:
            result = undo_incident(args.incident, site, false_alarm_by=false_alarm_by(args))
        except UndoRefused as exc:
            print(f"REFUSED: {exc}", file=sys.stderr)
            return 1
        replaced = replaced_passwords(site, args.incident)
    for entry in result:
        print(f"  {entry['status']:6} {entry['target']}: undo {entry['operation']} via {entry['action']}"
              + (f" — {entry['error']}" if entry.get("error") else ""))
    for account in replaced:
        print(f"  kept   {account}: {PASSWORD_GONE.replace('INCIDENT', args.incident).replace('ID', account)}")
    failed = [e for e in result if e["status"] in ("failed", "deferred")]
    print(f"undo {args.incident}: {len(result) - len(failed)} reversed or already reversed, {len(failed)} failed or deferred")
    return 1 if failed else 0


def cmd_reinstate(args: argparse.Namespace) -> int:
    from tourniquet.cli.regions import false_alarm_by
    from tourniquet.engine.reinstate import reinstate_incident
    from tourniquet.engine.undo import UndoRefused

    if args.false_alarm_after_all and not (args.by or "").strip():
        print("refusing: --false-alarm-after-all needs --by NAME (who decided it was a false alarm after all; "
              "journaled)", file=sys.stderr)
        return 2
    with open_site(args.site) as site:
        try:
            results = reinstate_incident(args.incident, site, false_alarm_by=false_alarm_by(args))
        except UndoRefused as exc:
            print(f"REFUSED: {exc}", file=sys.stderr)
            return 1
    for entry in results:
        gone = PASSWORD_GONE.replace("INCIDENT", args.incident).replace("ID", str(entry["target"]))
        extra = f" ({gone})" if entry.get("password_replaced") else ""
        print(f"  {entry['status']:6} {entry['target']}: {entry['operation']}{extra} {entry.get('error', '')}".rstrip())
    failed = sum(1 for r in results if r["status"] == "failed")
    print(f"reinstate {args.incident}: {len(results) - failed} reinstated or already as recorded, {failed} refused/failed")
    return 1 if failed else 0


def _is_terminal() -> bool:
    return sys.stdout.isatty()


def cmd_conclude(args: argparse.Namespace) -> int:
    from tourniquet.engine.recover import conclude_investigation

    sites = sites_of(args)
    if len(sites) > 1:
        from tourniquet.engine.regions_after import conclude_across

        failed = 0
        for entry in conclude_across(args.incident, sites, by=args.by, finding=args.finding):
            failed += entry.error is not None and entry.error != "no part of this incident here"
            print(f"[{entry.region}] " + (entry.error or f"investigation concluded by {args.by}: {args.finding}"))
        return 1 if failed else 0
    with open_site(one_site(args)) as site:
        conclude_investigation(site, args.incident, by=args.by, finding=args.finding)
    print(f"incident {args.incident}: investigation concluded by {args.by}: {args.finding}")
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    from tourniquet.engine.recover import fixed_approver, recover_accounts
    from tourniquet.engine.run import reject_all
    from tourniquet.errors import TourniquetError
    from tourniquet.handover import handover

    if not args.password_file and not _is_terminal():
        print("refusing: the one-time password would go to a pipe or a log, not a person; run this in a terminal "
              "or give --password-file PATH (created with mode 0600)", file=sys.stderr)
        return 2
    approver = fixed_approver(args.approved_by, args.comment) if args.approved_by else reject_all
    sites = sites_of(args)
    if len(sites) > 1:
        from tourniquet.cli.regions import recover_across

        return recover_across(args, sites, approver)
    with open_site(one_site(args)) as site:
        try:
            with handover(args.incident, args.password_file) as box:
                recovery = recover_accounts(args.incident, args.account, site, operator=args.operator or "",
                                            investigation_approver=approver,
                                            replace_owner_password=args.replace_owner_password)
                passwords = box.take()
        except TourniquetError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
    summary = recovery.summary
    print(f"RECOVER: incident {summary.incident}: {summary.status}" + (f" — {summary.error}" if summary.error else ""))
    for change in summary.changes:
        if change.outcome != "noop":
            print(f"  {change.outcome:8} {change.target}: {change.operation}")
    print(f"  one-time password: {recovery.handed_to}")
    print(f"  report:  {recovery.report}")
    if passwords:
        print("\nOne-time password(s), shown this once: read it to the owner, who must choose a new one at the "
              "first login. It is not kept anywhere.")
        out = sys.stdout
        show = getattr(out, "write_unmasked", out.write)  # registered as a secret: masked on any other line
        for account, password in sorted(passwords.items()):
            show(f"  {account}: {password}\n")
        out.flush()
    return 0 if summary.status == "completed" else 1


def _false_alarm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--false-alarm-after-all", action="store_true",
                        help="the incident was concluded as real, but it was a false alarm after all: give the "
                             "accounts back anyway (needs --by; journaled)")
    parser.add_argument("--by", metavar="NAME", help="with --false-alarm-after-all: who decided so")


def register(sub: Any) -> None:
    undo = sub.add_parser("undo", help="reverse every change an incident made (false alarm)")
    incident_argument(undo)
    _false_alarm_arguments(undo)
    site_argument(undo, several=True)
    undo.set_defaults(func=cmd_undo)

    reinstate = sub.add_parser("reinstate", help="put an incident's accounts back as their snapshots recorded them")
    incident_argument(reinstate)
    _false_alarm_arguments(reinstate)
    site_argument(reinstate)
    reinstate.set_defaults(func=cmd_reinstate)

    conclude = sub.add_parser("conclude", help="record that an incident's investigation is over (recover may follow)")
    incident_argument(conclude)
    conclude.add_argument("--by", required=True, help="who concludes it (named in the journal)")
    conclude.add_argument("--finding", required=True, help="what the investigation found")
    site_argument(conclude, several=True)
    conclude.set_defaults(func=cmd_conclude)

    recover = sub.add_parser("recover", help="give a contained account back to its owner (one-time password)")
    incident_argument(recover)
    recover.add_argument("--account", action="append", required=True, metavar="ID",
                         help="uid, RPPS number or e-mail of an account the incident contained (repeatable)")
    recover.add_argument("--approved-by", metavar="NAME",
                         help="who approved giving it back while the incident is under investigation")
    recover.add_argument("--comment", default="", help="why it was approved (ticket, call)")
    recover.add_argument("--operator", help="who gives the account back (named on the ticket)")
    recover.add_argument("--password-file", metavar="PATH",
                         help="write the one-time password to this new file (mode 0600) instead of the terminal")
    recover.add_argument("--replace-owner-password", action="store_true",
                         help="recover an account this incident already gave back: replaces the password its owner "
                              "may have chosen since (refused without it; journaled)")
    site_argument(recover, several=True)
    recover.set_defaults(func=cmd_recover)

"""``tourniquet apply INCIDENT --approver NAME [--replan]``: apply exactly the plan a person read.

The plan is the one ``tourniquet plan`` (or the ``respond`` flow) wrote for the incident: the newest,
or the one ``--plan HASH`` names. An account that changed since the plan gets nothing and is named
with its drift; ``--replan`` writes a new plan from the same inputs, to be read and applied in turn.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tourniquet.cli.common import incident_argument, site_argument, sites_of

__all__ = ["register", "cmd_apply"]


def _print_plan(plan: Any) -> None:
    from tourniquet.engine.plan_text import plan_lines

    for line in plan_lines(plan):
        print(line)


def cmd_apply(args: argparse.Namespace) -> int:
    sites = sites_of(args)
    if len(sites) <= 1:
        return _apply_one(args, sites[0] if sites else None)
    from tourniquet.config import load_site
    from tourniquet.engine.plans import PlanNotFound

    codes = []
    for site in sites:  # one incident across regions: each region applies its own part's plan
        region = load_site(site).site
        print(f"[{region}]")
        try:
            codes.append(_apply_one(args, site))
        except PlanNotFound as exc:
            print(f"[{region}] no plan here: {exc}")
    if not codes:
        return 2
    return 0 if all(code == 0 for code in codes) else 4 if any(code in (0, 4) for code in codes) else 1


def _apply_one(args: argparse.Namespace, site: str | None) -> int:
    from tourniquet.engine.apply import apply_plan, open_plan, replan
    from tourniquet.engine.plans import load_plan
    from tourniquet.site import Site

    plan = open_plan(args.incident, site, args.plan)
    if args.replan:
        summary = replan(plan, site=site)
        if summary.plan is None:
            print(f"FAILED: the new plan could not be made: {summary.status}: {summary.error}", file=sys.stderr)
            return 1
        from tourniquet.config import load_site

        runtime = Site(load_site(site))
        try:
            fresh = load_plan(runtime, args.incident, summary.plan_sha256)
        finally:
            runtime.close()
        print(f"NEW PLAN (nothing changed) replacing {plan.sha256[:12]}:")
        _print_plan(fresh)
        print(f"  apply it with: tourniquet apply {args.incident} --approver NAME --plan {fresh.sha256[:12]}")
        return 0
    result = apply_plan(plan, approver=args.approver, comment=args.comment or "", site=site)
    print(f"APPLY plan {plan.sha256} of incident {plan.incident}, approved by {args.approver}: {result.status}")
    for account, lines in sorted(result.drift.items()):
        print(f"  drift    {account}: nothing applied; " + "; ".join(lines))
    if result.summary is not None:
        summary = result.summary
        for change in summary.changes:
            if change.outcome != "noop":
                print(f"  {change.outcome:8} {change.target}: {change.operation} ({change.system})")
        for failure in summary.failures:
            print(f"  failed   {failure['item'] or failure['step']}: {failure['error']}")
        print(f"  journal: {summary.journal}")
        print(f"  report:  {summary.report}")
    if result.drift:
        print(f"  the directory changed since the plan: `tourniquet apply {plan.incident} --replan` makes a new "
              "plan to read and approve")
        return 4 if result.applied else 1
    return 0 if result.summary is not None and result.summary.status == "completed" else 1


def register(sub: Any) -> None:
    """Add the ``apply`` subcommand."""
    apply = sub.add_parser("apply", help="apply exactly the incident's approved plan (what `plan` wrote); "
                                         "an account changed since is left alone and named")
    incident_argument(apply)
    apply.add_argument("--approver", help="your name: the journal records it with the plan's SHA-256")
    apply.add_argument("--comment", default="", help="why (ticket, call with the ARS, who confirmed the alert)")
    apply.add_argument("--plan", metavar="HASH", help="the plan's SHA-256 (or its start); default: the newest")
    apply.add_argument("--replan", action="store_true",
                       help="make a new plan from the same inputs (after a drift); nothing is changed")
    site_argument(apply, several=True)
    apply.set_defaults(func=_checked)


def _checked(args: argparse.Namespace) -> int:
    if not args.replan and not (args.approver or "").strip():
        print("error: --approver NAME is required to apply a plan (it goes into the incident journal)",
              file=sys.stderr)
        return 2
    return cmd_apply(args)

"""``tourniquet approve RUN_ID --approver NAME [--reject] [--comment …]``: answer a paused run.

Prefect has no CLI command to resume a paused run; this one goes through its API
(``PREFECT_API_URL``), with the same form the UI shows, so the run's journal records who
decided and why whichever way the answer came.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register", "cmd_approve"]


def cmd_approve(args: argparse.Namespace) -> int:
    from prefect.exceptions import FlowPauseTimeout, ObjectNotFound
    from prefect.flow_runs import NotPausedError
    from prefect.settings import PREFECT_API_URL

    from tourniquet.flows.approval import resume

    if not PREFECT_API_URL.value():
        print("error: set PREFECT_API_URL to the Prefect server that runs the paused flow", file=sys.stderr)
        return 2

    try:
        resume(args.run_id, args.approver, approve=not args.reject, comment=args.comment or "")
    except ValueError:
        print(f"error: {args.run_id!r} is not a flow run id", file=sys.stderr)
        return 2
    except ObjectNotFound:
        print(f"error: no flow run {args.run_id} on this Prefect server", file=sys.stderr)
        return 2
    except NotPausedError:
        print(f"error: flow run {args.run_id} is not waiting for an approval", file=sys.stderr)
        return 1
    except FlowPauseTimeout:
        print(f"error: flow run {args.run_id} waited too long: the approval timed out (rejected)", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # the server refused the answer (e.g. invalid input): the run stays paused
        print(f"error: {exc}", file=sys.stderr)
        return 1
    verb = "rejected" if args.reject else "approved"
    print(f"flow run {args.run_id}: {verb} by {args.approver}")
    return 0


def register(sub: Any) -> None:
    """Add the ``approve`` subcommand to ``tourniquet``'s parser."""
    approve = sub.add_parser("approve", help="approve (or --reject) a run paused for an approval, via the Prefect API")
    approve.add_argument("run_id", metavar="RUN_ID", help="flow run id (shown in the UI and the run's logs)")
    approve.add_argument("--approver", required=True, help="your name, written to the incident journal")
    approve.add_argument("--reject", action="store_true", help="reject: the run changes nothing and fails")
    approve.add_argument("--comment", default="", help="why")
    approve.set_defaults(func=cmd_approve)

"""``tourniquet approve INCIDENT|RUN --approver NAME [--reject] [--comment …]``: answer a paused run.

Prefect has no CLI command to resume a paused run; this one goes through its API
(``PREFECT_API_URL``), with the same form the UI shows, so the run's journal records who
decided and why whichever way the answer came. The run is named by its incident (the one run
of that incident waiting for an approval: its plan, or a step over the limit), its id, or its
name as the UI shows it (``inc-20261201-624586d0-plan``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from uuid import UUID

__all__ = ["register", "cmd_approve", "find_paused_run"]


class RunNotFound(LookupError):
    """No single paused run answers to the name or id given; the message says what was found."""


def find_paused_run(ref: str) -> UUID:
    """The id of the run ``ref`` names: its id, or the one run of that name that waits for an approval."""
    try:
        return UUID(ref)
    except ValueError:
        pass
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[ref])),
                                     sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=50)
        if not runs:  # an incident id: its runs are named <incident>-<verb>
            runs = [run for run in client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=ref)),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=200) if run.name.startswith(ref + "-")]
    paused = [run for run in runs if run.state is not None and run.state.is_paused()]
    if len(paused) == 1:
        return paused[0].id
    if len(paused) > 1:
        listed = ", ".join(str(run.id) for run in paused)
        raise RunNotFound(f"{len(paused)} runs named {ref!r} wait for an approval ({listed}): give the run id")
    if runs:
        states = ", ".join(sorted({str(run.state.name) for run in runs if run.state is not None}))
        raise RunNotFound(f"no run named {ref!r} waits for an approval (found {len(runs)}: {states})")
    raise RunNotFound(f"no flow run named {ref!r} or of incident {ref!r} (nor with that id) on this Prefect server")


def cmd_approve(args: argparse.Namespace) -> int:
    import httpx
    from prefect.exceptions import FlowPauseTimeout, ObjectNotFound
    from prefect.flow_runs import NotPausedError
    from prefect.settings import PREFECT_API_URL

    from tourniquet.flows.approval import resume

    api = PREFECT_API_URL.value()
    if not api:
        print("error: set PREFECT_API_URL to the Prefect server that runs the paused flow", file=sys.stderr)
        return 2
    try:
        run_id = find_paused_run(args.run)
        resume(run_id, args.approver, approve=not args.reject, comment=args.comment or "")
    except RunNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ObjectNotFound:
        print(f"error: no flow run {args.run} on this Prefect server", file=sys.stderr)
        return 2
    except NotPausedError:
        print(f"error: flow run {args.run} is not waiting for an approval", file=sys.stderr)
        return 1
    except FlowPauseTimeout:
        print(f"error: flow run {args.run} waited too long: its plan or approval expired; nothing was changed "
              f"(plan again: `tourniquet apply INCIDENT --replan`, or a new run)", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"error: cannot reach the Prefect server at {api}: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the server refused the answer (e.g. invalid input): the run stays paused
        print(f"error: {exc}", file=sys.stderr)
        return 1
    verb = "rejected" if args.reject else "approved"
    named = "" if str(run_id) == args.run else f" ({args.run})"
    print(f"flow run {run_id}{named}: {verb} by {args.approver}")
    return 0


def register(sub: Any) -> None:
    """Add the ``approve`` subcommand to ``tourniquet``'s parser."""
    approve = sub.add_parser("approve", help="approve (or --reject) the plan or step a run waits on, via the Prefect "
                                             "API: the same run then applies exactly that plan")
    approve.add_argument("run", metavar="INCIDENT",
                         help="the incident (its one run waiting for an approval), or the flow run's id or name "
                              "as the UI shows it (e.g. inc-20261201-624586d0-plan)")
    approve.add_argument("--approver", required=True, help="your name, written to the incident journal")
    approve.add_argument("--reject", action="store_true",
                         help="reject: the run changes nothing and ends 'plan rejected' (a step: the run fails)")
    approve.add_argument("--comment", default="", help="why")
    approve.set_defaults(func=cmd_approve)

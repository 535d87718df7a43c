"""The ``recover`` flow: :func:`tourniquet.engine.recover.recover_accounts` with Prefect's executor and approvals.

The one-time password never passes through Prefect: it is not a parameter or a result, and the
tasks hand it to the flow process's :mod:`tourniquet.handover`, which writes it at once to the
0600 file the operator named (``password_file``, on the worker's machine). While the incident is
under investigation the run pauses for a person's approval (the same form as the blast-radius
approval) unless ``approved_by`` names who approved.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import Field
from typing_extensions import Annotated

from tourniquet.config import load_site
from tourniquet.engine.recover import RecoverRefused, fixed_approver, recover_accounts
from tourniquet.flows.approval import prefect_approver
from tourniquet.flows.artifacts import artifact_key
from tourniquet.flows.executor import PrefectExecutor
from tourniquet.flows.respond import RunFailed, in_flow_run_id
from tourniquet.handover import for_incident, handover
from tourniquet.logs import configure_logging
from tourniquet.site import Site

__all__ = ["recover"]


@flow(name="recover", log_prints=False)
def recover(
    incident: Annotated[str, Field(description="The incident that contained the account")],
    accounts: Annotated[list[str], Field(description="uid, RPPS number or e-mail of each account to give back")],
    password_file: Annotated[str, Field(description="New file for the one-time password (mode 0600, on the worker)")] = "",
    approved_by: Annotated[str, Field(description="Who approved it while the incident is under investigation")] = "",
    comment: Annotated[str, Field(description="Why it was approved")] = "",
    operator: Annotated[str, Field(description="Who gives the account back (named on the ticket)")] = "",
    site: Annotated[str | None, Field(description="Site configuration file; empty = $TOURNIQUET_SITE")] = None,
    replace_owner_password: Annotated[bool, Field(description="Recover an account this incident already gave "
                                                              "back: replaces the password its owner may have "
                                                              "chosen since")] = False,
) -> dict[str, Any]:
    """Give accounts a real incident contained back to their owners with a one-time password.

    Refused for accounts the incident did not contain. While the investigation is open, a person
    approves (``approved_by``, or the run pauses for the approval form).

    Args:
        incident: The incident that contained the account
        accounts: uid, RPPS number or e-mail of each account to give back
        password_file: New file for the one-time password (created with mode 0600, on the worker's machine)
        approved_by: Who approved it while the incident is under investigation (empty = ask in the UI)
        comment: Why it was approved (ticket, call)
        operator: Who gives the account back (named on the ticket)
        site: Site configuration file; empty = $TOURNIQUET_SITE
        replace_owner_password: Recover an account this incident already gave back, replacing the password its
            owner may have chosen since (refused without it; journaled)
    """
    configure_logging()
    open_box = for_incident(incident)  # e.g. a caller in this process that shows it on its terminal
    if open_box is None and not password_file.strip():
        raise RecoverRefused("password_file is required: the worker has no terminal to show the one-time password "
                             "on, so it is written to that new file (mode 0600) and nowhere else")
    investigation = fixed_approver(approved_by, comment) if approved_by.strip() else prefect_approver
    runtime = Site(load_site(site))
    try:
        with nullcontext(open_box) if open_box is not None else handover(incident, password_file.strip()):
            recovery = recover_accounts(incident, accounts, runtime, operator=operator,
                                        investigation_approver=investigation, approver=prefect_approver,
                                        executor=PrefectExecutor(), run_id=in_flow_run_id(),
                                        replace_owner_password=replace_owner_password)
    finally:
        runtime.close()
    summary = recovery.summary
    if recovery.report is not None:
        create_markdown_artifact(recovery.report.read_text(encoding="utf-8"), key=artifact_key(incident, "recover"),
                                 description=f"recover: {summary.status}")
    if summary.status != "completed":
        raise RunFailed(f"recover {summary.status}: {summary.error} (journal: {summary.journal})")
    return {"incident": incident, "status": summary.status, "accounts": accounts, "report": str(recovery.report),
            "handed_to": recovery.handed_to}

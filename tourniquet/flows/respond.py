"""Prefect flows: run a playbook (``run_playbook``) and the responder's form (``respond``).

Each step of the playbook is a Prefect task run named after the step (``lock[jdupont]``
for a for_each item), so the Prefect UI shows the incident procedure as it runs. Each flow
run is named after its incident and mode (``inc-…-contain``, ``inc-…-DRY-RUN``) and tagged
``live`` or ``dry-run``, so a plan and a containment never look alike in the runs list.

A run that fails for an expected reason (an unknown account, a refusal, a system down, a bad
input) ends in a Failed state whose message is that reason: no traceback, and the same words
in the UI, the CLI and the incident's events.
"""


from typing import Any

from prefect import flow
from prefect.states import State
from pydantic import Field, WithJsonSchema
from typing_extensions import Annotated

from tourniquet.engine.execute import find_playbook, progress
from tourniquet.engine.loader import load_playbook
from tourniquet.engine.run import RunSummary
from tourniquet.errors import TourniquetError
from tourniquet.exit_codes import ExitCode
from tourniquet.flows.form import AccountsError, parse_accounts, parse_sites
from tourniquet.flows.running import (
    RunFailed,
    execute_in_flow,
    failed,
    in_flow_run_id,
    name_from_parameters,
    not_started,
    summary_dict,
    tag_run,
)
from tourniquet.flows.states import run_state

__all__ = ["run_playbook", "respond", "in_flow_run_id", "RunFailed", "execute_in_flow"]

#: The form offers the accounts as one block of text (the default: paste from a mail or an alert) or
#: as a list; each option is titled, where the UI would otherwise show "string" and "array".
AccountsText = Annotated[str, WithJsonSchema({"type": "string", "title": "one block of text"})]
AccountsList = Annotated[list[str], WithJsonSchema({"type": "array", "items": {"type": "string"}, "title": "list"})]
#: The site: one file, or several (one incident across regions) as a block of text or a list.
SitesText = Annotated[str, WithJsonSchema({"type": "string", "title": "one site, or one per line"})]
SitesList = Annotated[list[str], WithJsonSchema({"type": "array", "items": {"type": "string"}, "title": "list"})]


def _outcome(summary: RunSummary, playbook: str) -> dict[str, Any] | State[Any]:
    """Completed, named after the outcome (Contained, Partially contained, Planned …) when some account was
    reached and the run went to its end; Failed, saying why, when none was or the run stopped."""
    outcomes = summary.outcome()
    code = outcomes.exit_code()
    if not outcomes.stopped and code is not ExitCode.NONE:
        return run_state(outcomes, summary_dict(summary))
    # nothing contained, or stopped (failed, rolled back): the flow run is Failed, its message says why, then
    # what was done and what was not
    try:
        steps = [step.id for step in load_playbook(find_playbook(playbook)).playbook.steps]
    except TourniquetError:
        steps = list(summary.steps)
    done = progress(summary, steps, in_flow_run_id())
    why = f"{summary.playbook}{' ' + summary.status if outcomes.stopped else ''}: {outcomes.headline()}"
    if summary.error and summary.error not in why:
        why += f" — {summary.error}"
    return failed(why, f" (journal: {summary.journal}); {done}", int(code))


def _respond_run_name() -> str:
    return name_from_parameters("contain")


def _playbook_run_name() -> str:
    return name_from_parameters(None)


def _run(playbook: str, inputs: dict[str, Any], *, dry_run: bool, incident: str, site: str) -> dict[str, Any] | State[Any]:
    tag_run(dry_run)
    try:
        summary = execute_in_flow(playbook, inputs, dry_run=dry_run, incident=incident or None, site=site or None)
    except TourniquetError as exc:  # the site, the playbook or an input: nothing ran
        return not_started(f"{playbook}: not started: {exc}")
    return _outcome(summary, playbook)


@flow(name="tourniquet-playbook", log_prints=False, flow_run_name=_playbook_run_name)
def run_playbook(
    playbook: str,
    inputs: dict[str, Any] | None = None,
    dry_run: bool = False,
    incident: str = "",
    site: str = "",
) -> dict[str, Any] | State[Any]:  # a Failed state says why it did not complete
    """Run any playbook with its inputs as a mapping.

    Args:
        playbook: Playbook name or path
        inputs: The playbook's inputs, by name
        dry_run: Plan only: list every change, change nothing
        incident: Incident id; empty = derived from the playbook, the inputs and the day
        site: Site configuration file; empty = $TOURNIQUET_SITE
    """
    return _run(playbook, dict(inputs or {}), dry_run=dry_run, incident=incident or "", site=site or "")


@flow(name="respond", log_prints=False, flow_run_name=_respond_run_name)
def respond(
    accounts: Annotated[AccountsText | AccountsList, Field(description="uid, RPPS number or e-mail of each account")],
    reason: Annotated[str, Field(description="Why: alert id, ticket, who reported it")] = "",
    since: Annotated[str, Field(description="Start of the exposure window: ISO date or relative, e.g. -30d")] = "-30d",
    dry_run: Annotated[bool, Field(description="Plan only: list every change, change nothing")] = True,
    playbook: Annotated[str, Field(description="Playbook name or path")] = "credential-misuse",
    incident: Annotated[str, Field(description="Incident id; empty = derived from the inputs")] = "",
    site: Annotated[SitesText | SitesList, Field(description="Site configuration file; empty = $TOURNIQUET_SITE; "
                                                             "several = one incident across those regions")] = "",
    alert_time: Annotated[str, Field(description="When the alert was raised (ISO): starts the Art. 33 clock")] = "",
) -> dict[str, Any] | State[Any]:  # a Failed state says why it did not complete
    """Contain suspected practitioner accounts with the credential-misuse playbook.

    Prefect's deployment form shows the descriptions from this docstring (it ignores
    ``Annotated[..., Field(description=...)]``), so keep both in step.

    Args:
        accounts: uid, RPPS number or e-mail of each suspected account: one per line, or separated by commas or spaces
        reason: Why: alert id, ticket, who reported it
        since: Start of the exposure window: ISO date or relative, e.g. -30d
        dry_run: Plan only: list every change, change nothing (untick to contain)
        playbook: Playbook name or path
        incident: Incident id; empty = derived from the playbook, the accounts and the day
        site: Site configuration file; empty = $TOURNIQUET_SITE; several (one per line) = one incident across regions
        alert_time: When the alert was raised (ISO time): starts the GDPR Art. 33 72-hour clock; empty = the first plan or run
    """
    try:
        ids = parse_accounts(accounts)
    except AccountsError as exc:  # a malformed alert or form: a failed run that says so, not silence
        tag_run(dry_run)
        return not_started(f"respond: not started: {exc}")
    inputs: dict[str, Any] = {"accounts": ids, "since": since, "reason": reason}
    if alert_time.strip() and _declares(playbook, "alert_time"):  # a custom playbook may not keep the clock
        inputs["alert_time"] = alert_time.strip()
    sites = parse_sites(site)
    if len(sites) > 1:
        from tourniquet.flows.regions import run_across_in_flow  # several sites: one part per region

        return run_across_in_flow(playbook, inputs, sites, dry_run=dry_run, incident=incident or "")
    return _run(playbook, inputs, dry_run=dry_run, incident=incident or "", site=sites[0] if sites else "")


def _declares(playbook: str, name: str) -> bool:
    """Whether the playbook has the input ``name`` (an unreadable one: no; its run says why)."""
    try:
        return name in load_playbook(find_playbook(playbook)).playbook.inputs
    except TourniquetError:
        return False

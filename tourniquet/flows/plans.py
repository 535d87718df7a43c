"""Plan, ask a person, apply that plan: one flow run from the alert to the containment.

The ``respond`` flow started by an alert (or by the form, dry run ticked) plans the response
(:mod:`tourniquet.engine.plans`), then waits on an approval whose form shows the plan — each id as
given and the account it resolved to, the changes with the state each starts from, the approvals
it includes — and its SHA-256. Approved (in the UI or with ``tourniquet approve INCIDENT``), the
same flow run applies exactly that plan, re-checked for drift (:mod:`tourniquet.engine.apply`);
rejected, it ends "plan rejected", changing nothing; not answered before the plan expires, it
changes nothing either. A run of a deployment is suspended meanwhile (no worker slot held): it
starts again from the top when answered, and finds its plan again (:func:`plan_of_run`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import structlog
from prefect import flow
from prefect.states import Cancelled, State

from tourniquet.config import load_site
from tourniquet.engine.apply import apply_plan, decide
from tourniquet.engine.plan_text import plan_markdown
from tourniquet.engine.plans import Plan, load_plan, plan_of_run, remember_run
from tourniquet.errors import TourniquetError
from tourniquet.flows.approval import pause_message, prefect_approver, wait_for_decision
from tourniquet.flows.artifacts import PrefectObserver
from tourniquet.flows.executor import PrefectExecutor
from tourniquet.flows.running import execute_in_flow, failed, in_flow_run_id, summary_dict
from tourniquet.flows.story import publish_story, run_links
from tourniquet.regional import artifact_key
from tourniquet.secrets import mask
from tourniquet.site import Site

__all__ = ["plan_then_apply", "rename_run", "expire_plans"]

log = structlog.get_logger("tourniquet")


def rename_run(suffix: str, tag: str) -> None:
    """Once answered: ``inc-…-plan`` becomes ``inc-…-<suffix>`` and ``awaiting-approval`` gives way to ``tag``."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if not (context and context.flow_run and context.flow_run.name):
        return
    name = context.flow_run.name.rsplit("-", 1)[0] + f"-{suffix}" if suffix else context.flow_run.name
    try:
        with get_client(sync_client=True) as client:
            current = client.read_flow_run(context.flow_run.id)
            tags = sorted({*current.tags, tag} - {"awaiting-approval"})
            client.update_flow_run(context.flow_run.id, name=name, tags=tags)
    except Exception as exc:  # a name is a courtesy: never fail the containment over it
        log.warning("run.not_renamed", error=str(exc))


def _this_runs_plan(site: str, run_id: str) -> Plan | None:
    runtime = Site(load_site(site or None))
    try:
        return plan_of_run(runtime, run_id)
    finally:
        runtime.close()


def _new_plan(playbook: str, inputs: dict[str, Any], incident: str, site: str, run_id: str) -> Plan | State[Any]:
    summary = execute_in_flow(playbook, inputs, dry_run=True, incident=incident or None, site=site or None)
    if summary.plan is None or summary.status == "failed":
        return failed(f"{summary.playbook} not planned: {summary.error or summary.status}; nothing was changed")
    runtime = Site(load_site(site or None))
    try:
        plan = load_plan(runtime, summary.incident, summary.plan_sha256)
        remember_run(runtime, run_id, plan)
    finally:
        runtime.close()
    return plan


def _publish_plan(plan: Plan, markdown: str) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(mask(markdown), key=artifact_key(plan.incident, "plan"),
                             description=mask(f"Plan {plan.sha256[:12]} of {plan.incident}, waiting for approval"))


def plan_then_apply(playbook: str, inputs: dict[str, Any], *, incident: str, site: str) -> dict[str, Any] | State[Any]:
    """The ``respond`` flow with dry run: plan, wait for a person, apply what they approved."""
    run_id = in_flow_run_id()
    plan = _this_runs_plan(site, run_id)
    if plan is None:  # the first time through (not a suspended run started again)
        made = _new_plan(playbook, inputs, incident, site, run_id)
        if not isinstance(made, Plan):
            return made
        if not made.approved_labels():  # every id refused: nothing to ask anyone
            why = "; ".join(f"{a.get('named_by')}: {a.get('refused')}" for a in made.accounts())
            return failed(f"{playbook}: nothing to contain: {why or 'no account named'}; nothing was changed")
        plan = made
        decide(plan, "asked", site=site or None, run_id=run_id)
        publish_story(plan.incident, [site or None], links=run_links(plan.incident, run_id))
    description = plan_markdown(plan, verb="contain")
    _publish_plan(plan, description)
    remaining = int((plan.expires - datetime.now(timezone.utc)).total_seconds())
    if remaining <= 0:
        return _expired(plan, site, run_id)
    accounts = len(plan.approved_labels())
    what = f"plan {plan.sha256[:12]} to contain {accounts} account(s) of {plan.incident}"
    message = pause_message(what, remaining).replace("counts as a rejection: nothing changes",
                                                     "and the plan expires: nothing changes")
    answer = wait_for_decision(description, message=message, timeout=remaining, key=f"plan-{plan.sha256[:16]}")
    if answer is None or plan.expired():
        rename_run("", "plan-expired")
        return _expired(plan, site, run_id)
    approver, comment = answer.approver.strip(), answer.comment
    if answer.decision != "approve":
        decide(plan, "rejected", site=site or None, approver=approver, comment=comment, run_id=run_id)
        log.warning("plan.rejected", approver=approver, plan=plan.sha256)
        rename_run("", "plan-rejected")
        publish_story(plan.incident, [site or None], links=run_links(plan.incident, run_id))
        return Cancelled(name="Plan rejected", message=mask(f"plan rejected by {approver}: nothing changed"
                                                            + (f" ({comment})" if comment else "")))
    rename_run("contain", "live")
    executor = PrefectExecutor()
    try:
        result = apply_plan(plan, approver=approver, comment=comment, site=site or None, executor=executor,
                            observer=PrefectObserver(run_id, executor, site=site or None), run_id=run_id,
                            fallback=prefect_approver, links=lambda found: run_links(found, run_id))
    except TourniquetError as exc:
        return failed(f"plan {plan.sha256[:12]} not applied: {exc}")
    if result.summary is None:
        return failed(f"plan {plan.sha256[:12]} approved by {approver}: {result.status}",
                      "; drift: " + "; ".join(f"{a}: {' '.join(w)}" for a, w in result.drift.items()))
    outcome = summary_dict(result.summary)
    outcome.update(plan=plan.sha256, approver=approver, drift=result.drift, applied=result.applied)
    if result.summary.status != "completed" or result.drift:
        drift = "; ".join(f"{a} not applied ({' '.join(w)})" for a, w in result.drift.items())
        return failed(f"{result.summary.playbook} {result.status}", f" (journal: {result.summary.journal})"
                      + (f"; {drift}" if drift else ""))
    return outcome


def _expired(plan: Plan, site: str, run_id: str) -> State[Any]:
    decide(plan, "expired", site=site or None, run_id=run_id,
           comment=f"not approved before {plan.expires:%Y-%m-%d %H:%M} UTC")
    publish_story(plan.incident, [site or None], links=run_links(plan.incident, run_id))
    return Cancelled(name="Plan expired", message=f"plan {plan.sha256[:12]} expired at {plan.expires:%Y-%m-%d %H:%M} "
                                                  "UTC without an answer: nothing changed")


@flow(name="expire-plans", log_prints=False)
def expire_plans() -> list[str]:
    """End every plan run still suspended past its plan's expiry: ``Plan expired``, nothing changed.

    A suspended run has no process to notice that its plan expired (Prefect only refuses a late
    answer); this sweep, scheduled in ``prefect.yaml``, says so on the run and in the plan's decisions.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    now = datetime.now(timezone.utc)
    ended: list[str] = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))), limit=200)
        for run in runs:
            timeout = run.state.state_details.pause_timeout if run.state else None
            if not (run.name.endswith("-plan") and timeout is not None and timeout <= now):
                continue
            site = run.parameters.get("site") if isinstance(run.parameters.get("site"), str) else ""
            try:
                plan = _this_runs_plan(site or "", str(run.id))
                if plan is not None:
                    decide(plan, "expired", site=site or None, run_id=str(run.id),
                           comment=f"not approved before {plan.expires:%Y-%m-%d %H:%M} UTC")
                    publish_story(plan.incident, [site or None])
            except TourniquetError as exc:  # the site is gone or broken: still end the run
                log.warning("plan.expiry_not_recorded", run=run.name, error=str(exc))
            client.set_flow_run_state(run.id, Cancelled(
                name="Plan expired", message=f"the plan expired at {timeout:%Y-%m-%d %H:%M} UTC without an answer: "
                                             "nothing changed"), force=True)
            ended.append(run.name)
    log.info("plans.expired", runs=ended)
    return ended

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

import hashlib
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import Any

import structlog
from prefect import flow
from prefect.states import Cancelled, State

from tourniquet.config import load_site
from tourniquet.engine.apply import ApplyResult, apply_plan, decide
from tourniquet.engine.plan_text import plan_markdown
from tourniquet.engine.plans import Plan, PlanNotFound, load_plan, plan_of_run, remember_run
from tourniquet.errors import TourniquetError
from tourniquet.flows.approval import pause_message, prefect_approver, wait_for_decision
from tourniquet.flows.artifacts import PrefectObserver
from tourniquet.flows.executor import PrefectExecutor
from tourniquet.flows.running import execute_in_flow, failed, in_flow_run_id, summary_dict
from tourniquet.flows.story import publish_story, run_links
from tourniquet.regional import artifact_key, working_for
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


def _this_runs_plans(sites: list[str], run_id: str) -> dict[str, Plan]:
    """The plans this flow run wrote before it was suspended, by site (empty: the first time through)."""
    found = {site: _this_runs_plan(site, run_id) for site in sites}
    return {site: plan for site, plan in found.items() if plan is not None}


def _new_plans(playbook: str, inputs: dict[str, Any], incident: str, sites: list[str],
               run_id: str) -> dict[str, Plan] | State[Any]:
    """Plan on one site, or on each region (a subflow per region); each region's plan is its own file."""
    if len(sites) > 1:
        from tourniquet.flows.regions import run_across_in_flow

        result = run_across_in_flow(playbook, inputs, sites, dry_run=True, incident=incident)
        if isinstance(result, State) and result.is_completed() and isinstance(result.data, dict):
            result = result.data  # Planned, Partially planned, Needs approval: the regions' plans are written
        if not isinstance(result, dict):
            return result
        incident = str(result["incident"])
    else:
        summary = execute_in_flow(playbook, inputs, dry_run=True, incident=incident or None,
                                  site=sites[0] or None)
        if summary.plan is None or summary.status == "failed":
            return failed(f"{summary.playbook} not planned: {summary.error or summary.status}; nothing was changed")
        incident = summary.incident
    plans: dict[str, Plan] = {}
    for site in sites:
        runtime = Site(load_site(site or None))
        try:
            plans[site] = load_plan(runtime, incident)
            remember_run(runtime, run_id, plans[site])
        except PlanNotFound:  # a region that holds none of the ids
            continue
        finally:
            runtime.close()
    return plans


def _publish_plan(incident: str, digest: str, markdown: str) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(mask(markdown), key=artifact_key(incident, "plan"),
                             description=mask(f"Plan {digest[:12]} of {incident}, waiting for approval"))


def _form(plans: dict[str, Plan]) -> tuple[str, str]:
    """The approval form's Markdown (each region's plan under its name) and the key of this approval."""
    if len(plans) == 1:
        (plan,) = plans.values()
        return plan_markdown(plan, verb="contain"), plan.sha256
    parts = [plan_markdown(plan, heading=f"Region {plan.data['site']}: approve this plan to contain, incident "
                                         f"`{plan.incident}`") for plan in plans.values()]
    digest = hashlib.sha256("".join(sorted(p.sha256 for p in plans.values())).encode()).hexdigest()
    head = (f"# One approval for {len(plans)} regions' plans\n\nApproving applies each region's plan below, "
            f"exactly; rejecting changes nothing anywhere.\n\n")
    return head + "\n".join(parts), digest


def _announce(plans: dict[str, Plan], run_id: str, status: str, **fields: Any) -> None:
    for site, plan in plans.items():
        decide(plan, status, site=site or None, run_id=run_id, **fields)
    first = next(iter(plans.values()))
    publish_story(first.incident, [site or None for site in plans], links=run_links(first.incident, run_id))


def plan_then_apply(playbook: str, inputs: dict[str, Any], *, incident: str,
                    sites: list[str]) -> dict[str, Any] | State[Any]:
    """The ``respond`` flow with dry run: plan (one site, or each region), wait for a person, apply what they
    approved."""
    run_id = in_flow_run_id()
    sites = sites or [""]
    plans = _this_runs_plans(sites, run_id)
    if not plans:  # the first time through (not a suspended run started again)
        made = _new_plans(playbook, inputs, incident, sites, run_id)
        if not isinstance(made, dict):
            return made
        if not any(plan.approved_labels() for plan in made.values()):  # every id refused: nobody to ask
            why = "; ".join(f"{a.get('named_by')}: {a.get('refused')}" for p in made.values() for a in p.accounts())
            return failed(f"{playbook}: nothing to contain: {why or 'no account named'}; nothing was changed")
        plans = made
        _announce(plans, run_id, "asked")
    first = next(iter(plans.values()))
    description, digest = _form(plans)
    _publish_plan(first.incident, digest, description)
    expires = min(plan.expires for plan in plans.values())
    remaining = int((expires - datetime.now(timezone.utc)).total_seconds())
    if remaining <= 0:
        return _expired(plans, run_id)
    accounts = sum(len(plan.approved_labels()) for plan in plans.values())
    what = (f"plan {digest[:12]} to contain {accounts} account(s) of {first.incident}"
            + (f" in {len(plans)} regions" if len(plans) > 1 else ""))
    message = pause_message(what, remaining).replace("counts as a rejection: nothing changes",
                                                     "and the plan expires: nothing changes")
    answer = wait_for_decision(description, message=message, timeout=remaining, key=f"plan-{digest[:16]}")
    if answer is None or any(plan.expired() for plan in plans.values()):
        rename_run("", "plan-expired")
        return _expired(plans, run_id)
    approver, comment = answer.approver.strip(), answer.comment
    if answer.decision != "approve":
        log.warning("plan.rejected", approver=approver, plan=digest)
        rename_run("", "plan-rejected")
        _announce(plans, run_id, "rejected", approver=approver, comment=comment)
        return Cancelled(name="Plan rejected", message=mask(f"plan rejected by {approver}: nothing changed"
                                                            + (f" ({comment})" if comment else "")))
    rename_run("contain", "live")
    return _apply_all(plans, approver, comment, run_id)


def _apply_one(plan: Plan, site: str, approver: str, comment: str, run_id: str) -> ApplyResult | str:
    executor = PrefectExecutor()
    try:
        return apply_plan(plan, approver=approver, comment=comment, site=site or None, executor=executor,
                          observer=PrefectObserver(run_id, executor, site=site or None), run_id=run_id,
                          fallback=prefect_approver, links=lambda found: run_links(found, run_id))
    except TourniquetError as exc:
        return f"plan {plan.sha256[:12]} not applied: {exc}"


def _apply_all(plans: dict[str, Plan], approver: str, comment: str, run_id: str) -> dict[str, Any] | State[Any]:
    """Each plan applied (a region's under its name); the run fails, saying why, unless all were applied whole."""
    outcomes: list[dict[str, Any]] = []
    problems: list[str] = []
    several = len(plans) > 1
    for site, plan in plans.items():
        region = str(plan.data["site"])
        with working_for(region) if several else nullcontext():
            result = _apply_one(plan, site, approver, comment, run_id)
        prefix = f"{region}: " if several else ""
        if isinstance(result, str):
            problems.append(prefix + result)
            continue
        drift = "; ".join(f"{a} not applied ({' '.join(w)})" for a, w in result.drift.items())
        if result.summary is None:
            problems.append(f"{prefix}plan {plan.sha256[:12]} approved by {approver}: {result.status}; {drift}")
            continue
        outcome = summary_dict(result.summary)
        outcome.update(plan=plan.sha256, approver=approver, drift=result.drift, applied=result.applied,
                       region=region)
        outcomes.append(outcome)
        if result.summary.status != "completed" or result.drift:
            problems.append(f"{prefix}{result.summary.playbook} {result.status} (journal: {result.summary.journal})"
                            + (f"; {drift}" if drift else ""))
    if several:
        first = next(iter(plans.values()))
        publish_story(first.incident, [site or None for site in plans], links=run_links(first.incident, run_id))
    if problems:
        return failed(problems[0], "; " + "; ".join(problems[1:]) if len(problems) > 1 else "")
    if not several:
        return outcomes[0]
    return {"incident": next(iter(plans.values())).incident, "status": "completed", "approver": approver,
            "regions": outcomes}


def _expired(plans: dict[str, Plan], run_id: str) -> State[Any]:
    expires = min(plan.expires for plan in plans.values())
    _announce(plans, run_id, "expired", comment=f"not approved before {expires:%Y-%m-%d %H:%M} UTC")
    digest = next(iter(plans.values())).sha256 if len(plans) == 1 else f"of {len(plans)} regions"
    return Cancelled(name="Plan expired", message=f"plan {digest[:12] if len(plans) == 1 else digest} expired at "
                                                  f"{expires:%Y-%m-%d %H:%M} UTC without an answer: nothing changed")


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
            if not run.name.endswith("-plan"):
                continue
            from tourniquet.flows.form import parse_sites

            try:
                sites = parse_sites(run.parameters.get("site") or "") or [""]
            except Exception:  # a form value that names no site
                sites = []
            plans: dict[str, Plan] = {}
            for site in sites:
                try:
                    found = _this_runs_plan(site, str(run.id))
                except TourniquetError as exc:  # the site is gone or broken
                    log.warning("plan.not_read", run=run.name, error=str(exc))
                    continue
                if found is not None:
                    plans[site] = found
            timeout = run.state.state_details.pause_timeout if run.state else None
            expired = (any(plan.expired(now) for plan in plans.values()) if plans
                       else timeout is not None and timeout <= now)
            if not expired:
                continue
            for site, plan in plans.items():
                decide(plan, "expired", site=site or None, run_id=str(run.id),
                       comment=f"not approved before {plan.expires:%Y-%m-%d %H:%M} UTC")
                publish_story(plan.incident, [site or None])
            when = min((plan.expires for plan in plans.values()), default=timeout or now)
            client.set_flow_run_state(run.id, Cancelled(
                name="Plan expired", message=f"the plan expired at {when:%Y-%m-%d %H:%M} UTC without an answer: "
                                             "nothing changed"), force=True)
            ended.append(run.name)
    log.info("plans.expired", runs=ended)
    return ended

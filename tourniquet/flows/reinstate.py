"""The ``undo`` flow (a false alarm): every change the incident made reversed, each account as it was before.

It puts each snapshotted account back as its snapshot recorded it (lock, reset, groups), refusing
one whose entry changed in a way the snapshot and the journal cannot explain, then runs the
journal's own undo calls for everything else (:func:`tourniquet.engine.reinstate.reinstate_incident`),
one task run per account. The replaced password cannot come back (it was never read): the result
says so; the owner sets a new one by the site's usual procedure, or ``recover`` hands a one-time
password. (The module keeps its old name; the flow was called ``reinstate`` before the words were
made one: ``undo`` = false alarm, ``recover`` = real incident.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.runtime import flow_run as current_run
from prefect.utilities.annotations import quote

from tourniquet.config import load_site
from tourniquet.engine.reinstate import reinstate_incident
from tourniquet.errors import TourniquetError
from tourniquet.logs import configure_logging
from tourniquet.site import Site

__all__ = ["undo", "reinstate"]


@task(name="undo-account", task_run_name="undo[{label}]", cache_policy=NO_CACHE, persist_result=False)
def _undo_account(label: str, call: Any) -> Any:
    return call()


def _prefect_runner(label: str, call: Callable[[], Any]) -> Any:
    return _undo_account(label, quote(call))


def _undo_run_name() -> str:
    return f"{current_run.parameters.get('incident') or 'invalid-input'}-undo"


@flow(name="undo", log_prints=False, flow_run_name=_undo_run_name)
def undo(incident: str, site: str | None = None) -> list[dict[str, Any]]:
    """A false alarm: reverse every change the incident made, each account as it was before.

    Args:
        incident: The incident to undo (its accounts were not misused after all)
        site: Site configuration file; empty = $TOURNIQUET_SITE
    """
    configure_logging()
    context = FlowRunContext.get()
    run_id = str(context.flow_run.id) if context and context.flow_run else "undo"
    runtime = Site(load_site(site))
    try:
        results = reinstate_incident(incident, runtime, run=run_id, runner=_prefect_runner)
    finally:
        runtime.close()
    from tourniquet.flows.story import publish_story

    publish_story(incident, [site])
    failed = [r for r in results if r["status"] == "failed"]
    if failed:
        raise TourniquetError(f"undo {incident}: {len(failed)} failed: " + "; ".join(
            f"{r['target']}: {r.get('error', '')}" for r in failed))
    return results


#: The flow's name before the words were made one (imports of old scripts keep working).
reinstate = undo

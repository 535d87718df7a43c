"""The ``reinstate`` flow: :func:`tourniquet.engine.reinstate.reinstate_incident` with one task run per account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.utilities.annotations import quote

from tourniquet.config import load_site
from tourniquet.engine.reinstate import reinstate_incident
from tourniquet.errors import TourniquetError
from tourniquet.logs import configure_logging
from tourniquet.site import Site

__all__ = ["reinstate"]


@task(name="reinstate-account", task_run_name="reinstate[{label}]", cache_policy=NO_CACHE, persist_result=False)
def _reinstate_account(label: str, call: Any) -> Any:
    return call()


def _prefect_runner(label: str, call: Callable[[], Any]) -> Any:
    return _reinstate_account(label, quote(call))


@flow(name="reinstate", log_prints=False)
def reinstate(incident: str, site: str | None = None) -> list[dict[str, Any]]:
    """Undo an incident's directory changes: each account back as its snapshot recorded it."""
    configure_logging()
    context = FlowRunContext.get()
    run_id = str(context.flow_run.id) if context and context.flow_run else "reinstate"
    runtime = Site(load_site(site))
    try:
        results = reinstate_incident(incident, runtime, run=run_id, runner=_prefect_runner)
    finally:
        runtime.close()
    failed = [r for r in results if r["status"] == "failed"]
    if failed:
        raise TourniquetError(f"reinstate {incident}: {len(failed)} failed: " + "; ".join(
            f"{r['target']}: {r.get('error', '')}" for r in failed))
    return results

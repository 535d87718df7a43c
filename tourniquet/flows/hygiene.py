"""The ``hygiene`` Prefect flow: run a hygiene playbook on a schedule and publish its findings.

Findings become a table artifact and a Markdown summary in the flow run (keys
``hygiene-<playbook>-findings`` / ``-summary``: each run adds a version), and files in the
site's state dir (:mod:`tourniquet.hygiene.runner`). Acting on findings goes through the
response playbooks only: a dry-run plan, or — above the configured severity — a real run
behind the approval gate.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field
from typing_extensions import Annotated

from tourniquet.engine.run import Approver, RunSummary
from tourniquet.flows.approval import prefect_approver
from tourniquet.flows.respond import execute_in_flow
from tourniquet.hygiene.runner import HygieneResult, render_markdown, run_hygiene
from tourniquet.logs import configure_logging

__all__ = ["hygiene", "publish", "ARTIFACT_ROWS"]

#: A table artifact is for reading in the UI; the full list is in findings.jsonl.
ARTIFACT_ROWS = 1000


def publish(result: HygieneResult) -> None:
    """Table artifact (one row per finding) and Markdown summary, with stable keys."""
    key = "hygiene-" + result.playbook.lower()
    rows = [f.row() for f in islice(result.iter_findings(), ARTIFACT_ROWS)]
    if rows:
        create_table_artifact(rows, key=f"{key}-findings",
                              description=f"{result.finding_count} findings (most severe first; all in "
                                          f"{result.findings_file})")
    create_markdown_artifact(render_markdown(result), key=f"{key}-summary",
                             description=f"{result.playbook}: {result.finding_count} findings")


def _launch_in_flow(playbook: str, inputs: dict[str, Any], *, dry_run: bool, site: str | None,
                    approver: Approver) -> RunSummary:
    """A response run inside this flow run: one task run per action, its artifacts in this run."""
    return execute_in_flow(playbook, inputs, dry_run=dry_run, site=site)


@flow(name="hygiene", log_prints=False)
def hygiene(
    playbook: Annotated[str, Field(description="Hygiene playbook name or path")] = "hygiene",
    site: Annotated[str | None, Field(description="Site configuration file; empty = $TOURNIQUET_SITE")] = None,
    register_extract: Annotated[str | None, Field(description="Register extract file or folder (overrides the playbook)")] = None,
    as_of: Annotated[str | None, Field(description="Reference time (ISO); empty = now")] = None,
    respond: Annotated[bool, Field(description="Plan (or, above the set severity, start) response runs")] = True,
) -> dict[str, Any]:
    """Find dormant, unregistered, unprotected and misused-looking accounts.

    Args:
        playbook: Hygiene playbook name or path.
        site: Site configuration file; empty = $TOURNIQUET_SITE.
        register_extract: National register extract file or folder (overrides the playbook).
        as_of: Reference time (ISO); empty = now.
        respond: Plan (or, above the set severity, start) response runs for the findings.
    """
    configure_logging()
    # A real response run waits on the same approval form as any run (pause, form, journal); outside a
    # flow run nobody can answer, and the answer is no.
    result = run_hygiene(playbook, site, as_of=as_of, register=register_extract, respond=respond,
                         approver=prefect_approver, launch=_launch_in_flow)
    publish(result)
    return result.as_dict()

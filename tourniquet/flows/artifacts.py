"""What a flow run shows in the Prefect UI: progress, the report, the accounts table, links; and its events.

:class:`PrefectObserver` is the engine's :class:`~tourniquet.engine.execute.RunObserver` inside a
flow run. Artifact keys are stable per incident, so each incident's latest report is one click away.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from tourniquet.engine.playbook import Step
from tourniquet.engine.report import account_rows
from tourniquet.engine.run import PlaybookRun, RunSummary
from tourniquet.flows.events import emit_incident
from tourniquet.secrets import mask, mask_data

__all__ = ["artifact_key", "PrefectObserver", "publish"]

log = structlog.get_logger("tourniquet")


def artifact_key(incident: str, suffix: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"tourniquet-{incident}".lower()).strip("-")
    return re.sub(r"-{2,}", "-", f"{base}-{suffix}")


class _Progress:
    """A progress artifact moved forward after each step and each for_each batch."""

    def __init__(self, run: PlaybookRun) -> None:
        self.total = max(1, len(run.playbook.steps))
        self.done = 0
        self.id = create_progress_artifact(
            0.0, key=artifact_key(run.incident, "progress"),
            description=f"{run.playbook.playbook}: steps done out of {self.total}",
        )

    def _set(self, fraction_of_step: float = 0.0) -> None:
        value = min(100.0, 100.0 * (self.done + fraction_of_step) / self.total)
        try:
            update_progress_artifact(self.id, value)  # type: ignore[arg-type]  # sync context: a UUID
        except Exception as exc:  # progress is a courtesy: never fail the containment over it
            log.warning("progress.not_updated", error=str(exc))

    def on_step(self, step: str, status: str) -> None:
        if status != "started":
            self.done += 1
            self._set()

    def on_batch(self, step: Step, finished: int, total: int) -> None:
        if total > 1:
            self._set(finished / total)


def _track_progress(run: PlaybookRun, executor: Any) -> None:
    try:
        progress = _Progress(run)
    except Exception as exc:
        log.warning("progress.not_created", error=str(exc))
        return
    run.on_step = progress.on_step
    if executor is not None and hasattr(executor, "on_batch"):
        executor.on_batch = progress.on_batch


def publish(summary: RunSummary, markdown: str, links: dict[str, str] | None = None) -> None:
    """Prefect artifacts with stable keys, so each incident's latest report is one click away (all masked)."""
    create_markdown_artifact(mask(markdown), key=artifact_key(summary.incident, "report"),
                             description=mask(f"{summary.playbook}: {summary.status}"))
    rows = mask_data(account_rows(summary))
    if rows:
        create_table_artifact(rows, key=artifact_key(summary.incident, "accounts"), description="Accounts and outcomes")
    for name, target in (links or {}).items():
        create_link_artifact(mask(target), link_text=f"{name} of incident {summary.incident}",
                             key=artifact_key(summary.incident, name), description=f"{name.title()} for {summary.incident}")


class PrefectObserver:
    """Progress while the run goes, artifacts and incident events when it ends."""

    def __init__(self, flow_run: str, executor: Any = None) -> None:
        self.flow_run = flow_run
        self.executor = executor

    def started(self, run: PlaybookRun, *, resumed: bool) -> None:
        _track_progress(run, self.executor)
        if not run.dry_run and not resumed:
            emit_incident("opened", run.incident, run.playbook.playbook, inputs=run.inputs, flow_run=self.flow_run)

    def finished(self, summary: RunSummary, markdown: str, links: dict[str, str]) -> None:
        publish(summary, markdown, links)
        emit_incident(summary.status, summary.incident, summary.playbook, dry_run=summary.dry_run,
                      error=summary.error, flow_run=self.flow_run)

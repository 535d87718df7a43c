"""What a flow run shows in the Prefect UI: progress, the report, the accounts table, the proof; and its events.

:class:`PrefectObserver` is the engine's :class:`~tourniquet.engine.execute.RunObserver` inside a
flow run. Artifact keys are stable per incident, so each incident's latest report is one click away.

Every artifact must make sense in a browser on another machine than the worker: the ticket is
a link only when the ticket system gave a web address (the file store's ticket is shown as its
own Markdown instead of a path the UI would turn into a 404), and the evidence is named by its
folder on the worker and its root hash (what ``tourniquet evidence verify`` prints), not by a
``file://`` link.

The progress moves after each step and each for_each batch, in the progress artifact and for
whoever listens in this process (:func:`progress_listener`: the CLI's progress bar).
"""

from __future__ import annotations

import base64
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
)

from tourniquet.engine.playbook import Step
from tourniquet.engine.report import account_rows
from tourniquet.engine.run import PlaybookRun, RunSummary
from tourniquet.flows.events import emit_incident
from tourniquet.regional import artifact_key  # the region's name in it, in a run across several sites
from tourniquet.secrets import mask, mask_data

__all__ = ["artifact_key", "PrefectObserver", "publish", "progress_listener", "evidence_markdown", "ProgressListener",
           "inline_images"]

log = structlog.get_logger("tourniquet")

#: Called with (percent done, what is running) as a run moves: see :func:`progress_listener`.
ProgressListener = Callable[[float, str], None]
_listeners: list[ProgressListener] = []
#: A file-store ticket larger than this is linked by name only (an artifact is not a file server).
MAX_TICKET_MARKDOWN = 200_000


@contextmanager
def progress_listener(listener: ProgressListener) -> Iterator[None]:
    """Tell ``listener`` how far the flow runs of this process are, while the block lasts."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def _tell(percent: float, what: str) -> None:
    for listener in list(_listeners):
        try:
            listener(percent, what)
        except Exception as exc:  # a progress bar must never fail a containment
            log.debug("progress.listener_failed", error=str(exc))


class _Progress:
    """A progress artifact moved forward after each step and each chunk of a step (and the listeners told).

    At most one update of the artifact a second (a 10,000-account run has hundreds of chunks), through
    one client; the listeners (the CLI's bar) hear every move.
    """

    INTERVAL = 1.0

    def __init__(self, run: PlaybookRun) -> None:

        self.total = max(1, len(run.playbook.steps))
        self.done = 0
        self.id: Any = None
        try:
            self.id = create_progress_artifact(
                0.0, key=artifact_key(run.incident, "progress"),
                description=f"{run.playbook.playbook}: steps done out of {self.total}",
            )
        except Exception as exc:
            log.warning("progress.not_created", error=str(exc))
        self._client: Any = None
        self._guard = threading.Lock()
        self._last = 0.0

    def _set(self, what: str, fraction_of_step: float = 0.0, *, force: bool = False) -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import ArtifactUpdate

        value = min(100.0, 100.0 * (self.done + fraction_of_step) / self.total)
        _tell(value, what)
        if self.id is None:
            return
        with self._guard:
            now = time.monotonic()
            if not force and now - self._last < self.INTERVAL:
                return
            self._last = now
            try:
                if self._client is None:
                    self._client = get_client(sync_client=True)
                self._client.update_artifact(artifact_id=self.id, artifact=ArtifactUpdate(data=value))
            except Exception as exc:  # progress is a courtesy: never fail the containment over it
                log.warning("progress.not_updated", error=str(exc))

    def on_step(self, step: str, status: str) -> None:
        if status == "started":
            _tell(min(100.0, 100.0 * self.done / self.total), step)
        else:
            self.done += 1
            self._set(step, force=self.done == self.total)

    def on_chunk(self, step: Step, finished: int, total: int) -> None:
        if total > 1:
            self._set(f"{step.id} {finished}/{total}", finished / total)


def _track_progress(run: PlaybookRun, executor: Any) -> None:
    progress = _Progress(run)
    run.on_step = progress.on_step
    if executor is not None and hasattr(executor, "on_chunk"):
        executor.on_chunk = progress.on_chunk


def evidence_markdown(incident: str, folder: str, root: str) -> str:
    """The evidence, named so that someone at another desk can find and check it."""
    host = socket.gethostname()
    lines = [
        f"### Evidence of incident `{incident}`",
        "",
        f"- **Folder**: `{folder}` on `{host}` (the machine that ran the playbook)",
        f"- **Root hash**: `{root}`" if root else "- **Root hash**: not sealed",
        "",
        f"Check it there with `tourniquet evidence verify {incident}`: it prints the same root hash "
        "while nothing in the folder has changed. Copy the root hash into the ticket.",
    ]
    return "\n".join(lines) + "\n"


def _ticket(summary: RunSummary, target: str) -> None:
    key = artifact_key(summary.incident, "ticket")
    if re.match(r"^https?://", target):
        create_link_artifact(mask(target), link_text=f"Ticket of incident {summary.incident}", key=key,
                             description=f"Ticket for {summary.incident}")
        return
    path = Path(target)
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() and path.stat().st_size <= MAX_TICKET_MARKDOWN else ""
    except OSError:
        text = ""
    if not text:
        text = f"The ticket of incident `{summary.incident}` is kept by the local ticket store: `{target}`.\n"
    create_markdown_artifact(mask(text), key=key, description=f"Ticket for {summary.incident} (local ticket store)")


def inline_images(markdown: str, folder: Path | None) -> str:
    """Local PNGs the report shows (paths relative to the evidence folder) as data URIs: the Prefect UI
    renders the artifact's markdown, and cannot read the evidence folder."""
    if folder is None:
        return markdown

    def inline(match: re.Match[str]) -> str:
        path = (folder / match.group(2)).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            return match.group(0)
        return f"![{match.group(1)}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode('ascii')})"

    return re.sub(r"!\[([^\]]*)\]\(([^)\s:]+\.png)\)", inline, markdown)


def publish(summary: RunSummary, markdown: str, links: dict[str, str] | None = None, *, root: str = "") -> None:
    """Prefect artifacts with stable keys, so each incident's latest report is one click away."""
    mode = "DRY-RUN plan, nothing changed" if summary.dry_run else "containment"
    folder = summary.journal.parent if summary.journal is not None else None
    headline = summary.outcome().headline()  # the same words as the report, the ticket and the command
    create_markdown_artifact(inline_images(mask(markdown), folder), key=artifact_key(summary.incident, "report"),
                             description=mask(f"{summary.playbook} ({mode}): {headline}"))
    rows = mask_data(account_rows(summary))
    if rows:
        create_table_artifact(rows, key=artifact_key(summary.incident, "accounts"),
                              description=mask(f"Accounts and outcomes: {headline}"))
    links = links or {}
    if links.get("evidence"):
        create_markdown_artifact(mask(evidence_markdown(summary.incident, links["evidence"], root)),
                                 key=artifact_key(summary.incident, "evidence"),
                                 description=f"Evidence for {summary.incident}" + (f", root {root[:12]}…" if root else ""))
    if links.get("ticket"):
        _ticket(summary, links["ticket"])


class PrefectObserver:
    """Progress while the run goes, artifacts and incident events when it ends."""

    def __init__(self, flow_run: str, executor: Any = None) -> None:
        self.flow_run = flow_run
        self.executor = executor

    def started(self, run: PlaybookRun, *, resumed: bool) -> None:
        _track_progress(run, self.executor)
        if not run.dry_run and not resumed:
            emit_incident("opened", run.incident, run.playbook.playbook, inputs=run.inputs, flow_run=self.flow_run)

    def finished(self, summary: RunSummary, markdown: str, links: dict[str, str], *, root: str = "") -> None:
        publish(summary, markdown, links, root=root)
        emit_incident(summary.status, summary.incident, summary.playbook, dry_run=summary.dry_run,
                      error=summary.error, flow_run=self.flow_run, root=root or None)

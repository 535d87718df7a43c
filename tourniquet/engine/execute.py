"""Load a playbook, run it for one incident, write its report and seal its evidence: the whole job.

Shared by ``tourniquet plan`` (no Prefect), the Prefect flows and the hygiene runner. What a
Prefect flow run adds — artifacts, events, a progress bar — comes in through a
:class:`RunObserver`, so nothing here imports Prefect.
"""

from __future__ import annotations

import errno
import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import structlog

from tourniquet.actions.tickets import report_links as ticket_links
from tourniquet.config import load_site
from tourniquet.engine.inputs import check_incident_id, resolve_inputs
from tourniquet.engine.loader import LoadedPlaybook, load_playbook
from tourniquet.engine.report import render_markdown, write_report
from tourniquet.engine.run import Approver, Executor, PlaybookRun, RunSummary, default_incident_id, reject_all
from tourniquet.errors import StorageFailed
from tourniquet.evidence import SealFailed
from tourniquet.journal import index_of, read_journal
from tourniquet.logs import configure_logging
from tourniquet.site import Site

__all__ = ["RunObserver", "execute_playbook", "find_playbook", "planned_incident", "summary_links", "progress"]


class RunObserver(Protocol):
    """Told what a run does, to show it somewhere (a Prefect flow run's artifacts and events).

    ``links`` are :func:`summary_links`; ``root`` is the evidence bundle's root hash after this
    run's seal ("" for a dry run), which the report itself cannot carry (the seal covers it).
    """

    def started(self, run: PlaybookRun, *, resumed: bool) -> None: ...

    def finished(self, summary: RunSummary, markdown: str, links: dict[str, str], *, root: str = "") -> None: ...


def find_playbook(name: str) -> Path:
    """A path, or a playbook name looked up in $TOURNIQUET_PLAYBOOKS, ./playbooks, then the repo's playbooks/."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        return candidate
    folders = [os.environ.get("TOURNIQUET_PLAYBOOKS", ""), "playbooks", str(Path(__file__).resolve().parents[2] / "playbooks")]
    for folder in filter(None, folders):
        for suffix in (".yaml", ".yml", ""):
            path = Path(folder) / f"{name}{suffix}"
            if path.is_file():
                return path
    return candidate  # the loader reports it as not found, with the name


def planned_incident(playbook: str, inputs: dict[str, Any], incident: str | None = None) -> str:
    """The incident id a run of these inputs gets: the one given, or derived as the engine derives it.

    For naming a Prefect flow run before it starts; raises what loading the playbook or reading
    the inputs would raise.
    """
    if incident:
        return check_incident_id(incident)  # it names the national folder too, before any run starts
    loaded = load_playbook(find_playbook(playbook))
    return default_incident_id(loaded.playbook.playbook, resolve_inputs(loaded.playbook, inputs))


def execute_playbook(
    playbook: str,
    inputs: dict[str, Any],
    *,
    dry_run: bool,
    incident: str | None = None,
    site: str | None = None,
    executor: Executor | None = None,
    approver: Approver = reject_all,
    observer: RunObserver | None = None,
    run_id: str = "",
) -> RunSummary:
    """Load, run, report and seal; ``observer`` (if any) is told when the run starts and ends."""
    with _fewer_collections():
        return _execute(playbook, inputs, dry_run=dry_run, incident=incident, site=site, executor=executor,
                        approver=approver, observer=observer, run_id=run_id)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Keep Python's cycle collector out of the way of a big run.

    A run of 1,000 accounts allocates hundreds of thousands of small dicts (reads, journal records);
    at the default threshold the collector ran thousands of times, walking every object Prefect,
    pydantic and the imported modules hold — none of them garbage. ``gc.freeze`` sets those aside
    and a higher first threshold makes collections rarer: a fifth less CPU for the same run.
    """
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(before[0], 20_000), before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _execute(playbook: str, inputs: dict[str, Any], *, dry_run: bool, incident: str | None, site: str | None,
             executor: Executor | None, approver: Approver, observer: RunObserver | None, run_id: str) -> RunSummary:
    configure_logging()
    loaded = load_playbook(find_playbook(playbook))
    runtime = Site(load_site(site))
    run: PlaybookRun | None = None
    stage = "start the run"
    try:
        try:
            run = PlaybookRun(loaded, inputs, runtime, incident=incident, dry_run=dry_run, run_id=run_id,
                              executor=executor, approver=approver)
            if observer is not None:
                observer.started(run, resumed=run.journal.path.exists())
            stage = "run the steps"
            summary = run.execute()
            _add_step_approvals(summary, run)
            stage = "notify"
            _notify(runtime, run, summary)
            links = summary_links(summary, loaded)
            tickets = ticket_links(summary.results)
            shown = {name: target for name, target in links.items() if not (name == "ticket" and tickets)}
            markdown = render_markdown(summary, run.inputs, links={**shown, **tickets})
            stage = "write the report"
            write_report(summary, markdown)
            root = ""
            if not dry_run and summary.journal is not None and summary.journal.exists():
                from tourniquet.engine.sealing import seal_incident  # last: the manifest covers the report too

                stage = "seal the evidence"
                root = seal_incident(runtime, summary.incident, note=f"{summary.playbook}: {summary.status}").root
        except OSError as exc:
            raise StorageFailed(_stopped(run, stage, _cannot_write(exc, run))) from None
        except SealFailed as exc:
            raise StorageFailed(_stopped(run, stage, str(exc))) from None
        if observer is not None:
            observer.finished(summary, markdown, links, root=root)
        return summary
    finally:
        runtime.close()


def _notify(site: Site, run: PlaybookRun, summary: RunSummary) -> None:
    """After the changes: what waited in the notify outbox goes first, then the SOC hears of this run (a dry
    run: its plan awaits approval). Never raises; this run's own incident is sealed with the run."""
    from tourniquet.engine.notices import deliver_notifications
    from tourniquet.notices.dispatch import after_run, report_lines

    if site.notify.outbox.keys():
        try:
            deliver_notifications(site, skip_seal=run.incident)
        except Exception as exc:  # a notification never fails a run
            structlog.get_logger("tourniquet").error("notify.outbox_failed", error=str(exc))
    after_run(site, run.journal, run.run_id, evidence=str(run.journal.path.parent))
    summary.notifications = report_lines(run.journal)


def _cannot_write(exc: OSError, run: PlaybookRun | None) -> str:
    where = exc.filename or (run.journal.path if run is not None else "the evidence folder")
    code = errno.errorcode.get(exc.errno or 0, "")
    return f"cannot write {where}: {exc.strerror or exc}" + (f" ({code})" if code else "")


def _stopped(run: PlaybookRun | None, stage: str, why: str) -> str:
    """Why the run stopped, what it did before, and what it did not do: the responder's next move."""
    if run is None:
        return f"{why}; nothing was done: the run did not start"
    not_done = []
    if stage in ("run the steps", "write the report"):
        not_done.append("the report")
    if not run.dry_run:
        not_done.append("the seal of the evidence")
    steps = [step.id for step in run.playbook.steps]
    return f"{run.playbook.playbook} stopped: {why}; {progress(run.summary, steps, run.run_id, not_done)}"


def progress(summary: RunSummary, steps: list[str], run_id: str, also_not_done: list[str] | None = None) -> str:
    """``done: …; not done: …`` for a run that ended early: its changes (from the journal, which knows
    about a change sent but not confirmed) and the steps it did not finish."""
    try:
        records = [r for r in read_journal(summary.journal) if r.get("run") == run_id] if summary.journal else []
    except (OSError, ValueError):
        records = []
    applied = [f"{r.get('operation')} {r.get('target')}" for r in records
               if r.get("type") == "change" and r.get("outcome") == "applied"]
    unsure = [f"{r.get('operation')} {r.get('target')}" for r in index_of(records).unconfirmed.values()]
    finished = [step for step, status in summary.steps.items() if status == "completed"]
    missing = [step for step in steps if summary.steps.get(step) not in ("completed", "skipped")]
    done = (f"done: {len(applied)} change(s) applied ({_listed(applied)})" if applied
            else "done: no change was applied")
    if finished:
        done += f"; steps finished: {', '.join(finished)}"
    if unsure:
        done += f"; sent but not confirmed in the journal: {_listed(unsure)} (check them)"
    not_done = ([f"steps {', '.join(missing)}"] if missing else []) + list(also_not_done or [])
    return done + (f"; not done: {', '.join(not_done)}" if not_done else "")


def _listed(items: list[str], limit: int = 20) -> str:
    """At most ``limit`` items: a failure line for 1,000 accounts stays readable (the journal has them all)."""
    shown = ", ".join(items[:limit])
    return shown + (f" … and {len(items) - limit} more (all in the journal)" if len(items) > limit else "")


def _add_step_approvals(summary: RunSummary, run: PlaybookRun) -> None:
    """Decisions of ``flow.approval`` steps (the engine records the blast-radius ones itself)."""
    known = {(a["step"], a["status"]) for a in summary.approvals}
    for record in run.journal.kept("approval", run=run.run_id):
        entry = {"step": record.get("step", ""), "status": record.get("status", ""),
                 "approver": record.get("approver", ""), "comment": record.get("comment", ""),
                 "reason": str(record.get("reason", ""))[:200]}
        if entry["status"] in ("approved", "rejected", "would be required") and (entry["step"], entry["status"]) not in known:
            summary.approvals.append(entry)
            known.add((entry["step"], entry["status"]))


def summary_links(summary: RunSummary, loaded: LoadedPlaybook) -> dict[str, str]:
    """Where the proof is: the evidence folder, and the ticket when a tickets step returned one.

    The folder is a path on the machine that ran the playbook (a ``file://`` link opens nothing
    in someone else's browser); the ticket is the ticket system's own URL, or the file store's
    readable ticket file.
    """
    links: dict[str, str] = {}
    if summary.journal is not None and not summary.dry_run:
        links["evidence"] = str(summary.journal.parent.resolve())
    for step in loaded.playbook.steps:
        if not step.action.startswith("tickets."):
            continue
        result = summary.results.get(step.id)
        for candidate in ([result] if isinstance(result, dict) else []):
            url = candidate.get("url") or candidate.get("link") or candidate.get("ticket_url")
            if isinstance(url, str) and url:
                links["ticket"] = url
    return links

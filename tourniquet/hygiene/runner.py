"""Run a hygiene playbook: sweep the directory once, query the access log, write the findings,
and act on them only through the guarded response playbooks.

Outputs, in ``<state_dir>/hygiene/<playbook>-<timestamp>/``:

- ``findings.jsonl``: one finding per line; ``findings.md``: the summary a responder reads;
- ``evidence/<check id>.json``: each check's parameters, window, queries (SQL and parameters,
  rows, seconds), source files (register extract name and date) and the flagged accounts;
- ``summary.json``: per-check status and counts, and the response runs proposed or started.

Acting on findings: accounts whose findings reach ``respond.propose_at`` (and suggest the
response playbook) get a **dry-run plan** of that playbook (``execute_playbook(dry_run=True)``,
changing nothing). When a finding reaches ``respond.execute_at``, a real run is started only
after the approver says yes (outside a Prefect flow the default approver says no: recorded).

The directory checks see the directory in one paged sweep in this process; the access checks, when
there are both kinds, run in a child process at the same time (:func:`run_access_job`).

Imports the loader, the catalogue, the directory connector and the engine (to plan or run the
response playbook); imported by the package namespace, the CLI and the Prefect flow.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import structlog

from tourniquet.config import SiteConfig, load_site
from tourniquet.connectors.directory import DirectoryClient
from tourniquet.engine.run import ApprovalRequest, Approver, RunSummary, reject_all
from tourniquet.errors import TourniquetError
from tourniquet.hygiene.checks import CHECKS, AccessCheck, Check, DirectoryCheck, HygieneContext
from tourniquet.hygiene.findings import Finding
from tourniquet.hygiene.loader import LoadedHygiene, load_hygiene
from tourniquet.hygiene.results import FindingStore, HygieneResult, render_markdown, write_outputs
from tourniquet.hygiene.spec import HygienePlaybook
from tourniquet.site import Site

__all__ = ["FindingStore", "HygieneResult", "run_hygiene", "render_markdown", "find_hygiene_playbook"]

log = structlog.get_logger("tourniquet")


class Launcher(Protocol):
    """Starts a response run for findings: the engine's own, or a flow run's (Prefect tasks, artifacts)."""

    def __call__(self, playbook: str, inputs: dict[str, Any], *, dry_run: bool, site: str | None,
                 approver: Approver) -> RunSummary: ...

def find_hygiene_playbook(name: str) -> Path:
    from tourniquet.engine.execute import find_playbook

    return find_playbook(name)


def _as_of(value: datetime | str | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def run_hygiene(
    playbook: str | LoadedHygiene = "hygiene",
    site: str | Path | Site | None = None,
    *,
    as_of: datetime | str | None = None,
    register: str | None = None,
    respond: bool = True,
    approver: Approver = reject_all,
    launch: Launcher | None = None,
) -> HygieneResult:
    """Run every check of the hygiene playbook; ``launch`` starts the response runs (default: the engine's)."""
    loaded = playbook if isinstance(playbook, LoadedHygiene) else load_hygiene(find_hygiene_playbook(playbook))
    own_site = not isinstance(site, Site)
    runtime = site if isinstance(site, Site) else Site(load_site(site))
    moment = _as_of(as_of)
    name = loaded.playbook.hygiene
    run_dir = runtime.config.state_dir / "hygiene" / f"{name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}"
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = HygieneContext(runtime, moment, run_dir, register=register, platform=loaded.playbook.platform)
    result = HygieneResult(name, moment, run_dir, FindingStore(run_dir))
    try:
        with structlog.contextvars.bound_contextvars(hygiene=name):
            checks = _build(loaded, ctx, result)
            access = [c for c in checks if isinstance(c, AccessCheck)]
            directory = [c for c in checks if isinstance(c, DirectoryCheck)]
            if access and directory and ctx.has_audit:
                # Both kinds at once: the access checks in a process of their own, while this one sweeps
                # the directory. (In a thread they would wait for the GIL at every row they fetch: the
                # sweep, decoding entries, holds it most of the time.) The child writes their evidence.
                queried = _access_in_a_process(loaded, ctx, access, result)
                _sweep(directory, ctx, result)
                try:
                    outcome = queried.result()
                except BrokenProcessPool as exc:
                    raise TourniquetError(f"the access checks' process died: {exc}") from exc
                for check_id, status in outcome.statuses.items():
                    result.checks[check_id].update(status)
                result.timings.update(outcome.timings)
                for line in outcome.findings:
                    result.store.add(Finding.model_validate_json(line))
                written: list[Check] = list(access)
            else:
                _sweep(directory, ctx, result)
                for finding in _run_access_checks(access, result.checks, result.timings):
                    result.store.add(finding)
                written = []
            for item in checks:
                if item not in written:
                    item.write_evidence()
            with _timed(result.timings, "sort findings"):
                result.store.finish(run_dir / "findings.jsonl")
                result.findings_file = result.store.path
            if respond and loaded.playbook.respond is not None:
                with _timed(result.timings, "respond"):
                    _respond(loaded, result, approver, runtime.config.source, launch or _launch)
            with _timed(result.timings, "write"):
                write_outputs(result)
            log.info("hygiene.finished", findings=result.finding_count, accounts=result.accounts_swept)
    finally:
        result.store.close()
        ctx.close()
        if own_site:
            runtime.close()
    return result


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[name] = round(time.monotonic() - started, 3)


def _build(loaded: LoadedHygiene, ctx: HygieneContext, result: HygieneResult) -> list[Check]:
    checks: list[Check] = []
    for spec in loaded.playbook.checks:
        if not spec.enabled:
            result.checks[spec.id] = {"kind": spec.check, "status": "disabled", "findings": 0}
            continue
        checks.append(CHECKS[spec.check].factory(spec, loaded.params[spec.id], ctx))
        result.checks[spec.id] = {"kind": spec.check, "status": "pending", "findings": 0,
                                  "severity": spec.severity.value, "evidence": f"evidence/{spec.id}.json"}
    return checks


def _fail(item: Check, statuses: dict[str, dict[str, Any]], exc: Exception) -> None:
    statuses[item.spec.id].update(status="failed", error=str(exc))
    item.evidence["error"] = str(exc)
    log.error("hygiene.check_failed", check=item.spec.id, error=str(exc))


def _sweep(checks: list[DirectoryCheck], ctx: HygieneContext, result: HygieneResult) -> None:
    """One paged pass over the directory feeds every directory check, entry by entry."""
    ready: list[DirectoryCheck] = []
    for item in checks:
        try:
            with _timed(result.timings, f"{item.spec.id} (prepare)"):
                item.prepare()
            ready.append(item)
        except TourniquetError as exc:
            _fail(item, result.checks, exc)
    if not ready:
        return
    config = ctx.site.config.directory
    wanted = {config.uid_attribute}  # and what each check says it reads: every attribute costs decoding
    for item in ready:
        wanted.update(item.attributes)
    inspected = 0
    # A connection of its own: a check reading an entry (a password policy) on the site's connection
    # in the middle of the paged search would overwrite the paging cookie and end the sweep early.
    sweeper = DirectoryClient(config)
    started = time.monotonic()
    try:
        for dn, attributes in sweeper.iter_entries(attributes=sorted(wanted)):
            inspected += 1
            account = (attributes.get(config.uid_attribute) or [dn])[0]
            for item in ready:
                for finding in item.inspect(dn, account, attributes):
                    result.store.add(finding)
                    result.checks[item.spec.id]["findings"] += 1
    except TourniquetError as exc:
        for item in ready:
            _fail(item, result.checks, exc)
        return
    finally:
        result.accounts_swept = inspected
        result.timings["directory sweep"] = round(time.monotonic() - started, 3)
        sweeper.close()
    for item in ready:
        item.done(inspected)
        result.checks[item.spec.id].update(status="completed", warnings=item.evidence.get("warnings", []))


def _run_access_checks(checks: list[AccessCheck], statuses: dict[str, dict[str, Any]],
                       timings: dict[str, float]) -> list[Finding]:
    """Every access check in turn (they share the per-day and per-address aggregates); their findings."""
    found: list[Finding] = []
    for item in checks:
        with _timed(timings, item.spec.id):
            found.extend(_run_access(item, statuses))
    return found


def _run_access(item: AccessCheck, statuses: dict[str, dict[str, Any]]) -> list[Finding]:
    if not item.ctx.has_audit:
        reason = "the site has no audit section (access log): nothing to check"
        statuses[item.spec.id].update(status="skipped", warnings=[reason])
        item.evidence["skipped"] = reason
        return []
    try:
        found = list(item.run())  # one finding per account that stands out: few
    except TourniquetError as exc:
        _fail(item, statuses, exc)
        return []
    statuses[item.spec.id].update(status="completed", findings=len(found), warnings=item.evidence.get("warnings", []))
    return found


@dataclass
class AccessJob:
    """What a child process needs to run the access checks on its own: picklable, no connection in it."""

    playbook: HygienePlaybook
    params: dict[str, Any]
    check_ids: list[str]
    site: SiteConfig
    as_of: datetime
    run_dir: Path
    statuses: dict[str, dict[str, Any]]
    hygiene: str


@dataclass
class AccessOutcome:
    findings: list[str]                     # each finding as JSON
    statuses: dict[str, dict[str, Any]]
    timings: dict[str, float]


def run_access_job(job: AccessJob) -> AccessOutcome:
    """In a child process: build the access checks, run them, write their evidence, hand back the findings."""
    from tourniquet.logs import configure_logging

    configure_logging()
    site = Site(job.site)
    ctx = HygieneContext(site, job.as_of, job.run_dir, platform=job.playbook.platform)
    specs = {spec.id: spec for spec in job.playbook.checks}
    timings: dict[str, float] = {}
    try:
        with structlog.contextvars.bound_contextvars(hygiene=job.hygiene):
            checks = [CHECKS[specs[i].check].factory(specs[i], job.params[i], ctx) for i in job.check_ids]
            found = _run_access_checks([c for c in checks if isinstance(c, AccessCheck)], job.statuses, timings)
            for item in checks:
                item.write_evidence()
    finally:
        ctx.close()
        site.close()
    return AccessOutcome([f.model_dump_json() for f in found], job.statuses, timings)


def _access_in_a_process(loaded: LoadedHygiene, ctx: HygieneContext, access: list[AccessCheck],
                         result: HygieneResult) -> "Future[AccessOutcome]":
    job = AccessJob(loaded.playbook, {c.spec.id: c.params for c in access}, [c.spec.id for c in access],
                    ctx.site.config, ctx.as_of, ctx.run_dir, {c.spec.id: dict(result.checks[c.spec.id]) for c in access},
                    loaded.playbook.hygiene)
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    future = pool.submit(run_access_job, job)
    pool.shutdown(wait=False)
    return future


# --------------------------------------------------------------------------- acting on findings


def _launch(playbook: str, inputs: dict[str, Any], *, dry_run: bool, site: str | None,
            approver: Approver) -> RunSummary:
    from tourniquet.engine.execute import execute_playbook

    return execute_playbook(playbook, inputs, dry_run=dry_run, site=site, approver=approver)


def _respond(loaded: LoadedHygiene, result: HygieneResult, approver: Approver, site: Path | None,
             launch: Launcher) -> None:
    from tourniquet.engine.execute import find_playbook
    from tourniquet.engine.loader import load_playbook

    policy = loaded.playbook.respond
    assert policy is not None
    if policy.propose_at is None:
        return
    eligible = [f for f in result.iter_findings()
                if f.severity.at_least(policy.propose_at) and f.suggested_playbook == policy.playbook]
    accounts: list[str] = []
    for finding in eligible:  # already sorted, most severe first
        if finding.account not in accounts:
            accounts.append(finding.account)
    if not accounts:
        return
    taken, left = accounts[:policy.max_accounts], accounts[policy.max_accounts:]
    checks = sorted({f.check for f in eligible if f.account in taken})
    reason = f"{policy.reason}: {', '.join(checks)} ({result.playbook} {result.as_of:%Y-%m-%d})"
    site_arg = str(site) if site else None
    record: dict[str, Any] = {"playbook": policy.playbook, "accounts": taken, "left_out": left, "reason": reason}
    try:
        declared = load_playbook(find_playbook(policy.playbook)).playbook.inputs
    except TourniquetError as exc:
        record.update(mode="dry-run", status="failed", error=f"response playbook: {exc}")
        result.responses.append(record)
        return
    inputs = {k: v for k, v in {"accounts": taken, "reason": reason}.items() if k in declared}
    try:
        plan = launch(policy.playbook, inputs, dry_run=True, site=site_arg, approver=approver)
        record.update(mode="dry-run", incident=plan.incident, status=plan.status, error=plan.error,
                      plan=str(plan.journal), report=str(plan.report),
                      changes=[{"target": c.target, "operation": c.operation, "outcome": c.outcome}
                               for c in plan.changes if c.outcome != "noop"])
    except TourniquetError as exc:
        record.update(mode="dry-run", status="failed", error=str(exc))
    result.responses.append(record)
    log.info("hygiene.proposed", playbook=policy.playbook, accounts=len(taken), status=record["status"])

    if policy.execute_at is None:
        return
    urgent = sorted({f.account for f in eligible if f.severity.at_least(policy.execute_at) and f.account in taken})
    if not urgent:
        return
    request = ApprovalRequest(
        incident=str(record.get("incident") or ""), playbook=policy.playbook, step="hygiene",
        reason=f"hygiene findings at or above {policy.execute_at.value} for {len(urgent)} account(s): {reason}",
        accounts=urgent, limit=policy.max_accounts, timeout_seconds=3600.0,
    )
    decision = approver(request)
    real: dict[str, Any] = {"playbook": policy.playbook, "accounts": urgent, "mode": "run",
                            "approval": {"approved": decision.approved, "approver": decision.approver,
                                         "comment": decision.comment}}
    if not decision.approved:
        real["status"] = "not started: approval rejected"
        result.responses.append(real)
        log.warning("hygiene.run_rejected", accounts=len(urgent), comment=decision.comment)
        return
    inputs = {k: v for k, v in {"accounts": urgent, "reason": reason}.items() if k in declared}
    try:
        run = launch(policy.playbook, inputs, dry_run=False, site=site_arg, approver=approver)
        real.update(incident=run.incident, status=run.status, error=run.error, journal=str(run.journal),
                    report=str(run.report))
    except TourniquetError as exc:
        real.update(status="failed", error=str(exc))
    result.responses.append(real)

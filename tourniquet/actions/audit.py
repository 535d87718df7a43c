"""``audit.*`` actions: freeze what the compromised accounts touched, as evidence.

``audit.snapshot_scope`` reads the platform's access log (read-only) and writes, under
``<evidence_dir>/<incident>/scope/<stamp>/``:

    events.jsonl.gz      every matching event, in the canonical model (streamed)
    subjects.csv         each affected person once: categories exposed, accounts, records, first/last
    people-to-warn.csv   the Art. 34 export for the DPO
    scope.json           per-account and total figures
    notification.md      the Art. 33 draft, measures taken read from the journal

A new folder per run: what was frozen at containment is never overwritten by a later run, when
the rolling log may have lost it. In a dry run the scope is computed and returned, nothing written.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import structlog
from pydantic import BaseModel, Field

from tourniquet.actions.context import ActionContext
from tourniquet.connectors.audit import account_key_of
from tourniquet.connectors.directory import Account
from tourniquet.errors import ConfigError
from tourniquet.notification import WARNING_COLUMNS, render_notification, warning_row
from tourniquet.registry import action
from tourniquet.scope import AccountScope, AffectedSubject, Scope

__all__ = ["snapshot_scope", "ScopeResult", "scope_rows"]

log = structlog.get_logger("tourniquet")
SUBJECT_COLUMNS = ["subject", "categories", "accounts", "records", "first", "last"]


class ScopeResult(BaseModel):
    status: str = Field(description="frozen | computed (dry run) | no audit source")
    people: int = 0
    records: int = 0
    categories: dict[str, int] = Field(default_factory=dict, description="People per category exposed.")
    accounts: list[AccountScope] = Field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    folder: str | None = None
    notification: str | None = None
    people_to_warn: str | None = None


def scope_rows(scope: Scope, labels: dict[str, str]) -> list[dict[str, Any]]:
    """One row per account and a total row: the table artifact and the CLI summary."""
    rows = []
    for row in [*scope.accounts, scope.total]:
        rows.append({
            "account": "TOTAL (people counted once)" if row.account == "*" else labels.get(row.account, row.account),
            "events": row.events, "people": row.subjects,
            "categories": ", ".join(f"{k}: {v}" for k, v in row.subjects_by_category.items()) or "—",
            "window": f"{row.first:%Y-%m-%d %H:%M} → {row.last:%Y-%m-%d %H:%M}" if row.first and row.last else "—",
            "source_ips": ", ".join(row.source_ips[:5]) + (" …" if len(row.source_ips) > 5 else ""),
        })
    return rows


AccountsArg = Annotated[list[Account], Field(description="Resolved accounts (steps.<resolve>.accounts).")]


@action("audit.snapshot_scope")
def snapshot_scope(
    ctx: ActionContext,
    accounts: AccountsArg,
    since: Annotated[datetime, Field(description="Start of the exposure window (inputs.since).")],
    until: Annotated[datetime | None, Field(description="End of the window (default: now).")] = None,
) -> ScopeResult:
    """Freeze what the accounts touched: events, people, data categories; write the Art. 33/34 drafts."""
    config = ctx.site.config.audit
    if config is None:
        ctx.journal.write("note", step=ctx.step, message="no audit source configured: data scope not computed")
        return ScopeResult(status="no audit source")
    keys: dict[str, str] = {}
    for account in accounts:
        key = account_key_of(account, config.account_key)
        if key is None:
            raise ConfigError(f"account {account.uid or account.dn} has no {config.account_key} to look up in the log")
        keys[key] = account.uid or account.dn
    until = until or datetime.now(timezone.utc)
    client = ctx.site.audit
    if ctx.dry_run:
        scope = client.snapshot_scope(list(keys), since, until, on_subject=lambda subject: None)
        _publish(ctx.incident, scope, keys, None)
        return _result("computed (dry run)", scope, None, {})

    folder = _new_folder(ctx.site.incident_dir(ctx.incident) / "scope")
    files = {"events": folder / "events.jsonl.gz", "subjects": folder / "subjects.csv",
             "people_to_warn": folder / "people-to-warn.csv", "scope": folder / "scope.json",
             "notification": folder / "notification.md"}
    events = _freeze_events(client, list(keys), since, until, files["events"])
    with files["subjects"].open("w", encoding="utf-8", newline="") as subjects_file, \
            files["people_to_warn"].open("w", encoding="utf-8", newline="") as warn_file:
        subjects = csv.DictWriter(subjects_file, fieldnames=SUBJECT_COLUMNS)
        warn = csv.DictWriter(warn_file, fieldnames=WARNING_COLUMNS)
        subjects.writeheader()
        warn.writeheader()

        def write_subject(subject: AffectedSubject) -> None:
            subjects.writerow({"subject": subject.subject, "categories": ";".join(subject.categories),
                               "accounts": ";".join(keys.get(a, a) for a in subject.accounts),
                               "records": subject.records, "first": subject.first.isoformat(),
                               "last": subject.last.isoformat()})
            warn.writerow(warning_row(subject))

        scope = client.snapshot_scope(list(keys), since, until, on_subject=write_subject)
    if events != scope.total.events:  # the log moved between the two reads: say so, keep both
        log.warning("scope.events_mismatch", frozen=events, counted=scope.total.events)
    files["scope"].write_text(json.dumps({"incident": ctx.incident, "accounts": keys, "frozen_events": events,
                                          **scope.model_dump(mode="json", exclude={"subjects"})},
                                         indent=2, sort_keys=True) + "\n", encoding="utf-8")
    names = {name: str(path) for name, path in files.items()}
    markdown = render_notification(ctx.incident, scope, keys, ctx.journal.records(), names,
                                   datetime.now(timezone.utc))
    files["notification"].write_text(markdown, encoding="utf-8")
    ctx.journal.write("scope", step=ctx.step, folder=str(folder), people=scope.total.subjects,
                      records=scope.total.events, frozen_events=events,
                      categories=scope.total.subjects_by_category, since=scope.since.isoformat(),
                      until=scope.until.isoformat())
    log.info("scope.frozen", people=scope.total.subjects, records=scope.total.events, folder=str(folder))
    _publish(ctx.incident, scope, keys, markdown)
    return _result("frozen", scope, folder, names)


def _result(status: str, scope: Scope, folder: Path | None, files: dict[str, str]) -> ScopeResult:
    return ScopeResult(status=status, people=scope.total.subjects, records=scope.total.events,
                       categories=scope.total.subjects_by_category, accounts=scope.accounts,
                       since=scope.since, until=scope.until, folder=str(folder) if folder else None,
                       notification=files.get("notification"), people_to_warn=files.get("people_to_warn"))


def _new_folder(parent: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    candidate, n = parent / stamp, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{stamp}-{n}"
    candidate.mkdir(parents=True)
    return candidate


def _freeze_events(client: Any, keys: list[str], since: datetime, until: datetime, path: Path) -> int:
    """Stream the matching events to a gzipped JSON-lines file (mtime 0: same events, same bytes)."""
    count = 0
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
        for event in client.events(keys, since, until):
            packed.write((json.dumps(event.as_json(), sort_keys=True) + "\n").encode("utf-8"))
            count += 1
    return count


def _artifact_key(incident: str, suffix: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"tourniquet-{incident}-{suffix}".lower()).strip("-")


def _publish(incident: str, scope: Scope, labels: dict[str, str], markdown: str | None) -> None:
    """Prefect artifacts when running inside a flow or task run; nothing otherwise."""
    try:
        from prefect.context import FlowRunContext, TaskRunContext

        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        create_table_artifact(scope_rows(scope, labels), key=_artifact_key(incident, "scope"),
                              description=f"Data scope: {scope.total.subjects} people, {scope.total.events} records")
        if markdown is not None:
            create_markdown_artifact(markdown, key=_artifact_key(incident, "notification"),
                                     description="GDPR Art. 33 notification draft")
    except Exception as exc:  # an artifact is a convenience: never fail the evidence over it
        log.warning("scope.artifact_failed", error=str(exc))

"""``audit.*`` actions: freeze what the compromised accounts touched, as evidence, and draft what to send.

``audit.snapshot_scope`` reads the platform's access log (read-only) and writes, under
``<evidence_dir>/<incident>/scope/<stamp>/``:

    events.jsonl.gz              every matching access, canonical, with its attribution (streamed)
    subjects.csv                 each affected person once: categories, fields, accounts, records, first/last,
                                 touched only by anomalous accesses, keyed hash of the national id
    people-to-warn.csv           the Art. 34 export: identity, contact fields, what was exposed in plain French
    adresses-source.csv          every (account, source address): network, accesses, anomalous, first/last seen
    scope.json                   per-account and total figures, the window and its warnings, the timeline
    notification.md              the Art. 33 draft (CNIL form order, French)
    declaration-cert-sante.md    the ARS / CERT Santé declaration draft (CSP L.1111-8-2), same figures
    timeline.png                 accesses per day per account, the anomalous part marked, the window drawn
    queries.json                 the SQL the figures come from (SQL sources)

Files about people are mode 0600. A new folder per run: what was frozen at containment is never
overwritten by a later run, when the rolling log may have lost it. In a dry run the scope is computed
and returned, nothing written.
"""

from __future__ import annotations

import base64
import csv
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
from pydantic import BaseModel, Field

from tourniquet.actions.context import ActionContext
from tourniquet.actions.scope_process import SUBJECT_COLUMNS, ScopeFiles, private_file, read_scope
from tourniquet.connectors.audit import AuditConfig, account_key_of
from tourniquet.connectors.directory import Account
from tourniquet.drafts import Figures, PeopleColumns, render_cert_sante, render_cnil
from tourniquet.drafts.people import safe_cell
from tourniquet.drafts.words import zone
from tourniquet.errors import ConfigError
from tourniquet.extras import MissingExtra
from tourniquet.regional import artifact_key
from tourniquet.registry import action
from tourniquet.scope import CONTACT, IDENTITY, AccountScope, Scope

__all__ = ["snapshot_scope", "ScopeResult", "scope_rows", "SUBJECT_COLUMNS", "ADDRESS_COLUMNS"]

log = structlog.get_logger("tourniquet")
ADDRESS_COLUMNS = ["account", "source_ip", "network", "events", "anomalous", "first_seen", "last_seen"]


class ScopeResult(BaseModel):
    status: str = Field(description="frozen | computed (dry run) | no audit source")
    people: int = 0
    records: int = 0
    categories: dict[str, int] = Field(default_factory=dict, description="People per category exposed.")
    anomalous_records: int = Field(0, description="Accesses that do not fit the owners' history.")
    anomalous_only_people: int = Field(0, description="People touched only by such accesses.")
    no_contact: int | None = Field(None, description="People with no contact channel (None: no subject table).")
    accounts: list[AccountScope] = Field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    window: str = Field("fixed", description="fixed | auto")
    warnings: list[str] = Field(default_factory=list, description="About the window (an attack began before it), "
                                                                  "or a part not produced (the timeline without matplotlib).")
    folder: str | None = None
    notification: str | None = None
    cert_sante: str | None = None
    people_to_warn: str | None = None
    timeline: str | None = None


def scope_rows(scope: Scope, labels: dict[str, str]) -> list[dict[str, Any]]:
    """One row per account and a total row: the table artifact and the CLI summary."""
    rows = []
    for row in [*scope.accounts, scope.total]:
        rows.append({
            "account": "TOTAL (people counted once)" if row.account == "*" else labels.get(row.account, row.account),
            "events": row.events, "anomalous": row.anomalous.events, "people": row.subjects,
            "only anomalous": row.anomalous.only_subjects,
            "categories": ", ".join(f"{k}: {v}" for k, v in row.subjects_by_category.items()) or "—",
            "window": f"{row.first:%Y-%m-%d %H:%M} → {row.last:%Y-%m-%d %H:%M}" if row.first and row.last else "—",
            "source_ips": f"{len(row.source_ips)} ({', '.join(row.networks[:3])}{' …' if len(row.networks) > 3 else ''})",
        })
    return rows


AccountsArg = Annotated[list[Account], Field(description="Resolved accounts (steps.<resolve>.accounts).")]
SinceArg = Annotated[datetime | Literal["auto"], Field(
    description="Start of the exposure window (inputs.since), or auto: each account's window starts at its first "
                "access that does not fit its owner's history, with a margin.")]


@action("audit.snapshot_scope")
def snapshot_scope(
    ctx: ActionContext,
    accounts: AccountsArg,
    since: SinceArg,
    until: Annotated[datetime | None, Field(description="End of the window (default: now).")] = None,
) -> ScopeResult:
    """Freeze what the accounts touched (events, people, data, anomalous split); draft Art. 33/34 and CERT Santé."""
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
        scope = read_scope(client, config, keys, since, until, None).scope
        _publish(ctx.incident, scope, keys, None, None)
        return _result("computed (dry run)", scope, None, {})

    incident_dir = ctx.site.incident_dir(ctx.incident)
    folder = _new_folder(incident_dir / "scope")
    files = {name: folder / file for name, file in (
        ("events", "events.jsonl.gz"), ("subjects", "subjects.csv"), ("people_to_warn", "people-to-warn.csv"),
        ("addresses", "adresses-source.csv"), ("scope", "scope.json"), ("notification", "notification.md"),
        ("cert_sante", "declaration-cert-sante.md"), ("timeline", "timeline.png"))}
    reading = read_scope(client, config, keys, since, until, ScopeFiles(
        files["events"], files["subjects"], files["people_to_warn"], _people_columns(config)))
    scope, events = reading.scope, reading.events
    if events != scope.total.events:  # the log moved between the two reads: say so, keep both
        log.warning("scope.events_mismatch", frozen=events, counted=scope.total.events)
    _write_addresses(scope, keys, files["addresses"])
    files["scope"].write_text(json.dumps(
        {"incident": ctx.incident, "accounts": keys, "frozen_events": events,
         **scope.model_dump(mode="json", exclude={"subjects", "addresses"})},
        indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    _write_queries(reading.queries, folder / "queries.json")
    from tourniquet.drafts.timeline import draw_timeline

    not_drawn: list[str] = []
    try:
        drawn = draw_timeline(scope, files["timeline"], keys, title=f"Incident {ctx.incident} : accès par jour et par compte")
    except MissingExtra as exc:  # the picture only: the figures and drafts do not need it
        drawn, not_drawn = None, [f"timeline.png not drawn: {exc}"]
        log.warning("scope.timeline_not_drawn", reason=str(exc))
    if drawn is None:
        del files["timeline"]
    relative = {name: path.relative_to(incident_dir).as_posix() for name, path in files.items()}
    figures = Figures.build(incident=ctx.incident, site=ctx.site.name, scope=scope, labels=keys,
                            journal=ctx.journal.records(), files=relative, generated=datetime.now(timezone.utc),
                            timezone_name=config.timezone, field_labels=config.field_labels,
                            systems=_systems(ctx, config))
    markdown = render_cnil(figures)
    files["notification"].write_text(markdown, encoding="utf-8")
    files["cert_sante"].write_text(render_cert_sante(figures), encoding="utf-8")
    ctx.journal.write("scope", step=ctx.step, folder=str(folder), people=scope.total.subjects,
                      records=scope.total.events, frozen_events=events,
                      anomalous_records=scope.total.anomalous.events,
                      anomalous_only_people=scope.total.anomalous.only_subjects,
                      categories=scope.total.subjects_by_category,
                      records_by_category=scope.total.records_by_category, since=scope.since.isoformat(),
                      until=scope.until.isoformat(), window=scope.window.mode,
                      warnings=[w.message for w in scope.window.warnings] + not_drawn)
    log.info("scope.frozen", people=scope.total.subjects, records=scope.total.events,
             anomalous=scope.total.anomalous.events, folder=str(folder))
    _publish(ctx.incident, scope, keys, markdown, files.get("timeline"))
    return _result("frozen", scope, folder, {name: str(path) for name, path in files.items()}, not_drawn)


def _result(status: str, scope: Scope, folder: Path | None, files: dict[str, str],
            not_drawn: list[str] | None = None) -> ScopeResult:
    return ScopeResult(status=status, people=scope.total.subjects, records=scope.total.events,
                       categories=scope.total.subjects_by_category, anomalous_records=scope.total.anomalous.events,
                       anomalous_only_people=scope.total.anomalous.only_subjects, no_contact=scope.no_contact,
                       accounts=scope.accounts, since=scope.since, until=scope.until, window=scope.window.mode,
                       warnings=[w.message for w in scope.window.warnings] + (not_drawn or []),
                       folder=str(folder) if folder else None,
                       notification=files.get("notification"), cert_sante=files.get("cert_sante"),
                       people_to_warn=files.get("people_to_warn"), timeline=files.get("timeline"))


def _people_columns(config: AuditConfig) -> PeopleColumns:
    """Identity then contact columns, headed by the subject table's own column names."""
    fields = config.subjects.fields if config.subjects else {}
    national = config.subjects.national_id if config.subjects else None
    identity = [(f, c) for f, c in fields.items() if config.categories.get(f) == IDENTITY and f != national]
    contact = [(f, c) for f, c in fields.items() if config.categories.get(f) == CONTACT and f != national]
    return PeopleColumns(identity, contact, config.field_labels, zone(config.timezone), config.categories)


def _new_folder(parent: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    candidate, n = parent / stamp, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{stamp}-{n}"
    candidate.mkdir(parents=True)
    return candidate


def _write_addresses(scope: Scope, labels: dict[str, str], path: Path) -> None:
    with private_file(path) as handle:  # the practitioners' addresses are personal data too
        writer = csv.DictWriter(handle, fieldnames=ADDRESS_COLUMNS)
        writer.writeheader()
        for stat in scope.addresses:
            writer.writerow({"account": labels.get(stat.account, stat.account), "source_ip": safe_cell(stat.source_ip),
                             "network": stat.network or "", "events": stat.events, "anomalous": stat.anomalous,
                             "first_seen": stat.first.isoformat(), "last_seen": stat.last.isoformat()})


def _write_queries(queries: list[dict[str, Any]], path: Path) -> None:
    if queries:
        path.write_text(json.dumps(queries, indent=2, default=str) + "\n", encoding="utf-8")


def _systems(ctx: ActionContext, config: AuditConfig) -> list[str]:
    site = ctx.site.config
    systems = [f"plateforme : journal d'accès ({config.kind}, table {config.table})",
               f"annuaire des comptes ({site.directory.flavor})"]
    if site.identity is not None:
        systems.append(f"fournisseur d'identité ({site.identity.kind})")
    return systems


def _publish(incident: str, scope: Scope, labels: dict[str, str], markdown: str | None,
             timeline: Path | None) -> None:
    """Prefect artifacts when running inside a flow or task run; nothing otherwise."""
    try:
        from prefect.context import FlowRunContext, TaskRunContext

        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        create_table_artifact(scope_rows(scope, labels), key=artifact_key(incident, "scope"),
                              description=f"Data scope: {scope.total.subjects} people, {scope.total.events} records")
        if markdown is not None:
            create_markdown_artifact(markdown, key=artifact_key(incident, "notification"),
                                     description="GDPR Art. 33 notification draft (French)")
        if timeline is not None and timeline.exists():
            picture = base64.b64encode(timeline.read_bytes()).decode("ascii")
            create_markdown_artifact(f"![Accès par jour et par compte](data:image/png;base64,{picture})\n",
                                     key=artifact_key(incident, "timeline"),
                                     description="Accesses per day per account, anomalous part in red")
    except Exception as exc:  # an artifact is a convenience: never fail the evidence over it
        log.warning("scope.artifact_failed", error=str(exc))

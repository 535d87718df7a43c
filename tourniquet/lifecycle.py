"""An incident's life, folded from its journals: its state, its accounts, its story.

Nothing here is stored apart: an incident is what its records say — the plans and the decisions
about them (``<state_dir>/plans/<incident>/``), and the incident journal (``<evidence_dir>/<incident>/
journal.jsonl``), in one site or in each region that holds a part. :func:`fold` is pure (records in,
:class:`Incident` out); :func:`incidents_of` reads the sites. The list (``tourniquet incidents``),
the story (``tourniquet incidents show``), the Prefect story artifact and the ticket's links all
read the same :class:`Incident`, so they cannot disagree.

The states, in the order of a life: planned → awaiting approval (or plan rejected / plan expired) →
contained / partially contained (or containment failed) → scope frozen → concluded → recovered /
partially recovered / undone → closed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tourniquet import outcomes
from tourniquet.journal import JournalDamaged, read_journal
from tourniquet.national.folder import folder_for, latest_summary

__all__ = ["Part", "Event", "Incident", "fold", "read_part", "incidents_of", "incident_of", "incident_row", "story_lines",
           "story_markdown"]

RECOVER_PLAYBOOK = "recover"
#: The plan files' format (:mod:`tourniquet.engine.plans` writes them; read here without the engine).
PLAN_FORMAT = "tourniquet-plan/1"


@dataclass
class Part:
    """What one site holds of an incident: its plans, the decisions on them, its journal."""

    region: str
    plans: list[dict[str, Any]] = field(default_factory=list)  # each plan's data plus "sha256" and "path"
    decisions: list[dict[str, Any]] = field(default_factory=list)
    journal: list[dict[str, Any]] = field(default_factory=list)
    journal_path: str = ""
    #: The latest national summary's people (each person once across regions), when this site holds it.
    national_people: int | None = None


@dataclass
class Event:
    """One line of the story: when, where, what — each from one record (or one run's records for one account)."""

    time: str
    region: str
    text: str


@dataclass
class Incident:
    id: str
    regions: list[str]
    state: str
    accounts_named: list[str]
    accounts_contained: list[str]  # by the incident's containment, whatever happened since
    accounts_held: list[str]  # still contained now (not recovered, not undone)
    accounts_recovered: list[str]
    people_in_scope: int | None
    opened: str
    last_change: str
    ticket: str | None
    events: list[Event]
    plan: str | None = None  # the newest plan's SHA-256
    conclusion: str | None = None


def _time(record: dict[str, Any]) -> str:
    return str(record.get("time") or record.get("created") or "")


def _short(sha: Any) -> str:
    return str(sha or "")[:12]


def _plan_events(part: Part) -> list[Event]:
    events = []
    for plan in part.plans:
        accounts = plan.get("accounts", [])
        named = ", ".join(
            f"{a.get('named_by')} → {a['account']}" if a.get("account") and a.get("named_by") != a.get("account")
            else f"{a.get('named_by')} refused ({a.get('refused')})" if not a.get("account")
            else str(a["account"]) for a in accounts)
        changes = sum(1 for a in accounts if not a.get("refused") for c in a.get("changes", [])
                      if c.get("outcome") == "to apply")
        events.append(Event(plan.get("created", ""), part.region,
                            f"plan {_short(plan.get('sha256'))} made: {changes} change(s) for {named or 'no account'}; "
                            f"expires {str(plan.get('expires', ''))[:16]} ({plan.get('path', '')})"))
    for record in part.decisions:
        status, who = record.get("status"), record.get("approver") or ""
        text = {"asked": f"approval of plan {_short(record.get('plan'))} asked (until {str(record.get('expires'))[:16]})",
                "approved": f"plan {_short(record.get('plan'))} approved by {who}",
                "rejected": f"plan {_short(record.get('plan'))} rejected by {who}: nothing changed",
                "expired": f"plan {_short(record.get('plan'))} expired unanswered: nothing changed"}.get(str(status))
        if text and status != "approved":  # the approval itself is told from the incident journal
            comment = record.get("comment")
            events.append(Event(_time(record), part.region, text + (f" ({comment})" if comment and status != "expired"
                                                                     else "")))
    return events


def _runs(records: list[dict[str, Any]]) -> dict[str, str]:
    """Each live run of the incident and its playbook, in the order they started."""
    return {str(r.get("run")): str(r.get("playbook")) for r in records
            if r.get("type") == "run" and r.get("status") == "started" and r.get("playbook")}


def _fold(records: list[dict[str, Any]], run: str) -> outcomes.Outcomes:
    """One run's outcomes; a ticket's changes are not an account's (the context names the ticket as the account)."""
    return outcomes.fold(({**r, "account": ""} if str(r.get("system", "")).startswith("tickets") else r
                          for r in records), run=run)


def _account_events(records: list[dict[str, Any]], region: str) -> list[Event]:
    """Per run and account: each step's word (:mod:`tourniquet.outcomes`), at the time of the run's last record."""
    events = []
    for run, playbook in _runs(records).items():
        mine = [r for r in records if r.get("run") == run]
        folded = _fold(mine, run)
        verb = "recovered" if playbook == RECOVER_PLAYBOOK else "contained"
        reached = set(folded.reached())
        when = _time(mine[-1]) if mine else ""
        for name, account in sorted(folded.accounts.items()):
            said: dict[str, list[str]] = {}
            for entry in account.entries.values():
                what = entry.operation or entry.step
                said.setdefault(entry.kind.value, []).append(f"{what} ({entry.system})" if entry.system else what)
            steps = "; ".join(f"{kind}: {', '.join(dict.fromkeys(parts))}" for kind, parts in said.items())
            if name in reached:
                events.append(Event(when, region, f"{name} {verb}: {steps}"))
            else:
                kind, why = account.why_not()
                events.append(Event(when, region, f"{name} not {verb} ({kind.value}: {why}); {steps}"))
        if folded.status:
            headline = (f"{len(reached)} of {len(folded.accounts)} account(s) given back" if verb == "recovered"
                        else folded.headline())
            events.append(Event(when, region, f"run {run} ({playbook}) ended {folded.status}: {headline}"))
    return events


def _journal_events(part: Part) -> list[Event]:
    events = _account_events(part.journal, part.region)
    undo: dict[str, list[str]] = {}
    for record in part.journal:
        kind, status, when = record.get("type"), record.get("status"), _time(record)
        text = ""
        if kind == "run" and status == "started":
            text = f"run {record.get('run')} started: {record.get('playbook')}"
        elif kind == "run" and status in ("undo finished", "reinstate finished"):
            text = f"{str(status).split()[0]} finished: {record.get('undone', record.get('reinstated', 0))} done, " \
                   f"{record.get('failed', 0)} failed"
        elif kind == "approval" and record.get("step") == "plan" and status == "approved":
            text = (f"{record.get('approver')} approved plan {_short(record.get('plan'))} (SHA-256 {record.get('plan')}) "
                    f"for {', '.join(record.get('accounts', [])) or 'no account'}")
        elif kind == "approval" and status in ("approved", "rejected"):
            text = f"{record.get('step')}: {status} by {record.get('approver') or 'nobody'}"
        elif kind == "drift":
            text = f"{record.get('account')}: nothing applied, changed since the plan ({record.get('reason')})"
        elif kind == "failure" and str(record.get("error", "")).startswith("refused"):
            text = f"{record.get('item')}: {record.get('error')}"
        elif kind == "ticket" and record.get("status") in ("delivered", "queued"):
            where = record.get("url") or record.get("ticket") or ""
            text = f"ticket {record.get('operation')}: {record.get('status')} {where}".rstrip()
        elif kind == "scope":
            text = (f"scope frozen: {record.get('people')} people, {record.get('records')} access record(s); "
                    f"drafts in {record.get('folder')}")
        elif kind == "investigation" and status == "concluded":
            text = f"investigation concluded by {record.get('by')}: {record.get('finding')}"
        elif kind == "sealed":
            text = f"evidence sealed ({record.get('manifest')}): root {record.get('root')}"
        elif kind == "lifecycle" and status == "closed":
            text = f"incident closed by {record.get('by')}" + (f": {record.get('note')}" if record.get("note") else "")
        elif kind == "undo":
            undo.setdefault(str(status), []).append(str(record.get("target")))
            continue
        if text:
            events.append(Event(when, part.region, text))
    if undo:
        last = max((_time(r) for r in part.journal if r.get("type") == "undo"), default="")
        events.append(Event(last, part.region, "undo: " + "; ".join(
            f"{status}: {', '.join(dict.fromkeys(targets))}" for status, targets in sorted(undo.items()))))
    return events


def _accounts(part: Part) -> tuple[list[str], list[str], list[str], list[str]]:
    """(named, contained, held now, recovered) in this part, each account's word from :func:`tourniquet.outcomes.fold`."""
    named: list[str] = []
    held: list[str] = []
    recovered: list[str] = []
    for run, playbook in _runs(part.journal).items():
        folded = _fold(part.journal, run)
        if playbook == RECOVER_PLAYBOOK:
            recovered += folded.reached()
            continue
        named += list(folded.accounts)
        held += folded.reached()
    if not named:
        for plan in part.plans[-1:]:
            named += [str(a.get("account") or a.get("named_by")) for a in plan.get("accounts", [])]
    undone = {str(r.get("target")) for r in part.journal if r.get("type") == "undo" and r.get("status") in ("done", "noop")}
    now = [a for a in dict.fromkeys(held) if a not in undone and a not in recovered]
    return list(dict.fromkeys(named)), list(dict.fromkeys(held)), now, list(dict.fromkeys(recovered))


def _state(parts: Sequence[Part], named: list[str], contained: list[str], recovered: list[str], now: datetime) -> str:
    journal = [r for p in parts for r in p.journal]
    kinds = {str(r.get("type")) for r in journal}
    if any(r.get("type") == "lifecycle" and r.get("status") == "closed" for r in journal):
        return "closed"
    if "undo" in kinds and not contained:
        return "undone"
    if recovered:
        return "recovered" if not contained else "partially recovered"
    if any(r.get("type") == "investigation" and r.get("status") == "concluded" for r in journal):
        return "concluded"
    if "scope" in kinds and contained:
        return "scope frozen"
    if contained:
        return "contained" if len(contained) >= len(named) else "partially contained"
    if any(r.get("type") == "change" for r in journal):
        return "containment failed"
    decisions = [d for p in parts for d in p.decisions]
    last = decisions[-1].get("status") if decisions else None
    plans = [plan for p in parts for plan in p.plans]
    if last == "rejected":
        return "plan rejected"
    if last == "expired" or (plans and plans[-1].get("expires") and
                             datetime.fromisoformat(plans[-1]["expires"]) <= now and last != "approved"):
        return "plan expired"
    if last == "asked":
        return "awaiting approval"
    return "planned" if plans else "opened"


def fold(incident: str, parts: Sequence[Part], now: datetime | None = None) -> Incident:
    """The incident as its records tell it (pure: no I/O, the same records give the same answer)."""
    now = now or datetime.now(timezone.utc)
    events = sorted((e for p in parts for e in _plan_events(p) + _journal_events(p)), key=lambda e: e.time)
    named: list[str] = []
    contained: list[str] = []
    held: list[str] = []
    recovered: list[str] = []
    for part in parts:
        n, c, h, r = _accounts(part)
        named += n
        contained += c
        held += h
        recovered += r
    named = list(dict.fromkeys(named))
    people = [r.get("people") for p in parts for r in p.journal if r.get("type") == "scope"]
    # Across regions a person may be in two regions' scopes: the national summary counts each once.
    national = [p.national_people for p in parts if p.national_people is not None]
    tickets = [r for p in parts for r in p.journal if r.get("type") == "ticket" and (r.get("url") or r.get("ticket"))]
    plans = sorted((plan for p in parts for plan in p.plans), key=lambda plan: plan.get("created", ""))
    concluded = [r for p in parts for r in p.journal if r.get("type") == "investigation"]
    times = [e.time for e in events if e.time]
    return Incident(
        id=incident, regions=sorted({p.region for p in parts}),
        state=_state(parts, named, held, recovered, now),
        accounts_named=named, accounts_contained=contained, accounts_held=held, accounts_recovered=recovered,
        people_in_scope=national[-1] if national else
        sum(int(p) for p in people if isinstance(p, int)) if people else None,
        opened=min(times) if times else "", last_change=max(times) if times else "",
        ticket=str(tickets[-1].get("url") or tickets[-1].get("ticket")) if tickets else None,
        events=events, plan=plans[-1].get("sha256") if plans else None,
        conclusion=str(concluded[-1].get("finding")) if concluded else None,
    )


def read_part(region: str, plan_folder: Path, evidence_folder: Path) -> Part:
    """What a site holds of one incident (unreadable plans are left out; a damaged journal is read up to the damage)."""
    part = Part(region)
    for path in sorted(plan_folder.glob("plan-*.json")) if plan_folder.is_dir() else []:
        try:
            body = path.read_bytes()
            data = json.loads(body)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("format") == PLAN_FORMAT:
            part.plans.append({**data, "sha256": hashlib.sha256(body).hexdigest(), "path": str(path)})
    part.plans.sort(key=lambda plan: str(plan.get("created", "")))
    decisions = plan_folder / "decisions.jsonl"
    try:
        part.decisions = list(read_journal(decisions)) if decisions.is_file() else []
    except (OSError, JournalDamaged, ValueError):
        part.decisions = []
    try:
        summary = latest_summary(folder_for(evidence_folder.parent, evidence_folder.name))
    except (OSError, JournalDamaged, ValueError):
        summary = None  # a damaged national journal: evidence verify names it; the regions' sum is shown
    if summary and isinstance(summary.get("people"), int):
        part.national_people = summary["people"]
    journal = evidence_folder / "journal.jsonl"
    if journal.is_file():
        part.journal_path = str(journal)
        try:
            part.journal = list(read_journal(journal))
        except (OSError, JournalDamaged, ValueError):
            part.journal = []
    return part


def incidents_of(sites: Iterable[str | None], now: datetime | None = None) -> list[Incident]:
    """Every incident of these sites (one, or the regions of a national incident), newest last."""
    from tourniquet.config import load_site
    from tourniquet.model import INCIDENT_ID

    parts: dict[str, list[Part]] = {}
    for path in sites:
        config = load_site(path)
        ids = {p.name for p in (config.state_dir / "plans").glob("*") if p.is_dir() and p.name != "runs"}
        ids |= {p.name for p in config.evidence_dir.glob("*") if (p / "journal.jsonl").is_file()}
        for incident in sorted(i for i in ids if INCIDENT_ID.match(i) and not i.endswith("-national")):
            part = read_part(config.site, config.state_dir / "plans" / incident, config.evidence_dir / incident)
            parts.setdefault(incident, []).append(part)
    found = [fold(incident, held, now) for incident, held in parts.items()]
    return sorted(found, key=lambda i: i.opened)


def incident_of(incident: str, sites: Iterable[str | None], now: datetime | None = None) -> Incident | None:
    """One incident, read from only its own folders in each site (None: no site holds any of it)."""
    from tourniquet.config import load_site

    parts = []
    for path in sites:
        config = load_site(path)
        part = read_part(config.site, config.state_dir / "plans" / incident, config.evidence_dir / incident)
        if part.plans or part.decisions or part.journal:
            parts.append(part)
    return fold(incident, parts, now) if parts else None


def incident_row(incident: Incident) -> dict[str, Any]:
    """One line of ``tourniquet incidents``: the same fields in the table and in ``--json``."""
    return {"incident": incident.id, "state": incident.state, "accounts_named": len(incident.accounts_named),
            "accounts_contained": len(incident.accounts_contained), "accounts_held": len(incident.accounts_held),
            "accounts_recovered": len(incident.accounts_recovered), "people_in_scope": incident.people_in_scope,
            "opened": incident.opened, "last_change": incident.last_change, "ticket": incident.ticket,
            "regions": incident.regions, "plan": incident.plan}


def story_lines(incident: Incident) -> list[str]:
    """The story for the terminal: a header, then one line per event in time order."""
    several = len(incident.regions) > 1
    lines = [f"incident {incident.id}: {incident.state}; {len(incident.accounts_named)} account(s) named, "
             f"{len(incident.accounts_contained)} contained, {len(incident.accounts_held)} still held, "
             f"{len(incident.accounts_recovered)} given back" +
             (f"; {incident.people_in_scope} people in scope" if incident.people_in_scope is not None else "") +
             (f"; ticket {incident.ticket}" if incident.ticket else "") +
             (f"; regions {', '.join(incident.regions)}" if several else "")]
    for event in incident.events:
        where = f"[{event.region}] " if several else ""
        lines.append(f"  {event.time[:19].replace('T', ' ')}  {where}{event.text}")
    return lines


def story_markdown(incident: Incident, links: dict[str, str] | None = None) -> str:
    """The story as the Prefect artifact shows it: outcome first, then the events, then the links."""
    head = story_lines(incident)[0]
    lines = [f"## {head}", ""]
    if incident.accounts_named:
        lines += ["| account | now |", "|---|---|"]
        for account in incident.accounts_named:
            now = ("given back" if account in incident.accounts_recovered else
                   "contained" if account in incident.accounts_held else
                   "contained, then undone" if account in incident.accounts_contained else "not contained")
            lines.append(f"| `{account}` | {now} |")
        lines.append("")
    lines += ["| when (UTC) | " + ("region | " if len(incident.regions) > 1 else "") + "what |",
             "|---|" + ("---|" if len(incident.regions) > 1 else "") + "---|"]
    for event in incident.events:
        region = f"{event.region} | " if len(incident.regions) > 1 else ""
        lines.append(f"| {event.time[:19].replace('T', ' ')} | {region}{event.text.replace('|', '/')} |")
    if links:
        lines += ["", "**Links:** " + " · ".join(f"[{name}]({url})" for name, url in links.items())]
    return "\n".join(lines) + "\n"

"""A plan is data: the exact changes a run would make, per account and system, and its SHA-256.

A dry run writes one plan file in the incident's plan folder (``<state_dir>/plans/<incident>/``):
for each id as it was given, the account it resolved to (uid, name, establishment) or why it was
refused; per account, each change with the directory state it starts from (``before``, what
:meth:`~tourniquet.actions.context.ActionContext.change` computed) and the state it leads to; the
approvals the changes need; and when the plan expires. The plan's hash is the SHA-256 of the file's
bytes, so what a person approved is exactly what is applied (:mod:`tourniquet.engine.apply`), or
nothing is.

Decisions about plans (asked, approved, rejected, expired) are written to ``decisions.jsonl`` in
the same folder, a hash-chained journal like the incident's, so that an incident that never got
past its plan still has a history (:mod:`tourniquet.lifecycle`).

May import: ``journal``, ``site``, ``model``, ``engine.summary``, ``engine.expressions``,
``tourniquet.errors``. Imported by: ``engine.execute``, ``engine.apply``, ``lifecycle``, ``flows``, ``cli``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tourniquet.engine.summary import RunSummary
from tourniquet.errors import TourniquetError
from tourniquet.journal import Journal, read_journal
from tourniquet.model import canonical_dn
from tourniquet.site import Site

__all__ = ["Plan", "PlanNotFound", "PlanExpired", "build_plan", "write_plan", "load_plan", "list_plans",
           "drift_between", "decisions_journal", "read_decisions", "PlanCheck", "Applying", "remember_run", "plan_of_run", "establishment_of", "PLAN_FORMAT", "DEFAULT_EXPIRY"]

PLAN_FORMAT = "tourniquet-plan/1"
DEFAULT_EXPIRY = "24h"


class PlanNotFound(TourniquetError):
    """No plan for this incident (or none with this hash) in the site's plan folder."""


class PlanExpired(TourniquetError):
    """The plan was not approved before it expired: nothing is applied from it."""


@dataclass(frozen=True)
class Plan:
    """A plan as read from its file: the data, its SHA-256 and where it is."""

    data: dict[str, Any]
    sha256: str
    path: Path

    @property
    def incident(self) -> str:
        return str(self.data["incident"])

    @property
    def expires(self) -> datetime:
        return datetime.fromisoformat(self.data["expires"])

    def expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(timezone.utc)) >= self.expires

    def accounts(self) -> list[dict[str, Any]]:
        return list(self.data.get("accounts", []))

    def approved_labels(self) -> list[str]:
        """The accounts this plan changes or checks (not the refused ids)."""
        return [a["account"] for a in self.accounts() if not a.get("refused")]


def establishment_of(groups: list[str]) -> list[str]:
    """The names of the groups an account belongs to (an establishment is one of them, in the directories seen)."""
    names = []
    for group in groups:
        first = str(group).split(",", 1)[0]
        names.append(first.split("=", 1)[1] if "=" in first else first)
    return names


def _resolved(summary: RunSummary, resolve_steps: list[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The accounts the resolve step(s) found (each with the id it was named by), and the refused ids."""
    accounts: list[dict[str, Any]] = []
    refused: dict[str, str] = {}
    for step in resolve_steps:
        result = summary.results.get(step) or {}
        for account in result.get("accounts", []) if isinstance(result, dict) else []:
            accounts.append(account)
    for failure in summary.failures:
        if failure.get("step") in resolve_steps and failure.get("item"):
            refused[str(failure["item"])] = str(failure.get("error", "")).removeprefix("refused: ")
    return accounts, refused


def build_plan(summary: RunSummary, *, inputs: dict[str, Any], playbook_file: str, site: str, run: str,
               resolve_steps: list[str], expiry: timedelta, now: datetime | None = None) -> dict[str, Any]:
    """The plan of a dry run, as data (see the module docstring); ``run`` is the run that planned it."""
    created = now or datetime.now(timezone.utc)
    accounts, refused_ids = _resolved(summary, resolve_steps)
    guarded = {str(r.get("account")): str(r.get("reason")) for r in summary.refused}
    by_label: dict[str, dict[str, Any]] = {}
    entries: list[dict[str, Any]] = []
    for account in accounts:
        label = str(account.get("uid") or account.get("dn"))
        entry = {"named_by": account.get("requested_as") or label, "account": label, "uid": account.get("uid"),
                 "dn": account.get("dn"), "name": account.get("name"),
                 "establishment": establishment_of(account.get("groups") or []), "changes": []}
        if label in guarded:
            entry["refused"] = guarded[label]
        by_label[label] = entry
        entries.append(entry)
    for identifier, why in refused_ids.items():
        entries.append({"named_by": identifier, "account": None, "refused": why, "changes": []})
    other: list[dict[str, Any]] = []
    for change in summary.changes:
        item = {"step": change.step, "action": change.action, "system": change.system, "target": change.target,
                "operation": change.operation, "before": change.before, "after": change.after,
                "outcome": "already so" if change.outcome == "noop" else "to apply"}
        owner = by_label.get(change.account or "")
        (owner["changes"] if owner is not None else other).append(item)
    return {
        "format": PLAN_FORMAT, "incident": summary.incident, "playbook": summary.playbook,
        "playbook_file": playbook_file, "site": site, "inputs": inputs, "planned_by_run": run,
        "created": created.isoformat(), "expires": (created + expiry).isoformat(),
        "accounts": entries, "other_changes": other,
        "approvals": [a for a in summary.approvals if a.get("status") == "would be required"],
        "status": summary.status, "error": summary.error,
        "journal": str(summary.journal) if summary.journal else "",
    }


def _text(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def write_plan(site: Site, data: dict[str, Any]) -> Plan:
    """Write the plan file (once; its name carries the time and the hash) and return it with its hash."""
    body = _text(data)
    digest = hashlib.sha256(body).hexdigest()
    folder = site.plan_dir(data["incident"])
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(data["created"]).strftime("%Y%m%dT%H%M%S%f")
    path = folder / f"plan-{stamp}-{digest[:12]}.json"
    path.write_bytes(body)
    return Plan(data, digest, path)


def _read(path: Path) -> Plan | None:
    try:
        body = path.read_bytes()
        data = json.loads(body)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        return None
    return Plan(data, hashlib.sha256(body).hexdigest(), path)


def list_plans(folder: Path) -> list[Plan]:
    """Every readable plan in an incident's plan folder, oldest first."""
    plans = [plan for plan in map(_read, sorted(folder.glob("plan-*.json"))) if plan is not None]
    return sorted(plans, key=lambda p: p.data.get("created", ""))


def load_plan(site: Site, incident: str, sha256: str | None = None) -> Plan:
    """The incident's newest plan, or the one whose hash starts with ``sha256``; the bytes are re-hashed."""
    plans = list_plans(site.plan_dir(incident))
    if sha256:
        plans = [p for p in plans if p.sha256.startswith(sha256.lower())]
        if not plans:
            raise PlanNotFound(f"incident {incident}: no plan with hash {sha256} in {site.plan_dir(incident)}")
    if not plans:
        raise PlanNotFound(f"incident {incident}: no plan in {site.plan_dir(incident)} "
                           "(make one with `tourniquet plan` or `tourniquet apply … --replan`)")
    return plans[-1]


def decisions_journal(site: Site, incident: str, run: str = "") -> Journal:
    """Where plan decisions are recorded (asked, approved, rejected, expired), next to the plans."""
    folder = site.plan_dir(incident)
    folder.mkdir(parents=True, exist_ok=True)
    return Journal(folder / "decisions.jsonl", incident=incident, run=run)


def read_decisions(folder: Path) -> list[dict[str, Any]]:
    path = folder / "decisions.jsonl"
    return list(read_journal(path)) if path.exists() else []


def remember_run(site: Site, run: str, plan: Plan) -> None:
    """Note which plan a flow run waits on: a suspended run starts again from the top and must find it."""
    folder = site.config.state_dir / "plans" / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{run}.json").write_text(json.dumps({"incident": plan.incident, "plan": plan.sha256}), encoding="utf-8")


def plan_of_run(site: Site, run: str) -> Plan | None:
    """The plan this flow run wrote before it was suspended, if any."""
    try:
        pointer = json.loads((site.config.state_dir / "plans" / "runs" / f"{run}.json").read_text(encoding="utf-8"))
        return load_plan(site, str(pointer["incident"]), str(pointer["plan"]))
    except (OSError, ValueError, KeyError, TypeError, PlanNotFound):
        return None


def _key(account: dict[str, Any]) -> str:
    return canonical_dn(account["dn"]) if account.get("dn") else str(account.get("account"))


def _shape(change: dict[str, Any]) -> tuple[str, str, str, str]:
    return (change["step"], change["system"], change["target"], change["operation"])


def _describe(change: dict[str, Any]) -> str:
    return f"{change['operation']} from {json.dumps(change['before'], sort_keys=True)}"


def drift_between(approved: Plan, fresh: dict[str, Any], *,
                  done: set[tuple[str, str]] | None = None) -> dict[str, list[str]]:
    """Per approved account, how the directory moved since the plan (empty: nothing moved).

    An account drifts when one of its changes now starts from another state (someone locked, unlocked
    or changed it), when it would get a change the plan did not list or lose one it did, or when its
    id no longer resolves to the same entry. A change this incident already applied (``done``: target,
    operation) is not drift: applying the same plan again after a crash finishes it.
    """
    done = done or set()
    now = {_key(a): a for a in fresh.get("accounts", []) if a.get("dn")}
    drift: dict[str, list[str]] = {}
    for account in approved.accounts():
        if account.get("refused") or not account.get("dn"):
            continue
        current = now.get(_key(account))
        label = str(account["account"])
        if current is None:
            drift[label] = [f"{account['named_by']} no longer resolves to {account['dn']}"]
            continue
        if current.get("refused"):
            drift[label] = [f"now refused: {current['refused']}"]
            continue
        was = {_shape(c): c for c in account["changes"]}
        is_ = {_shape(c): c for c in current["changes"]}
        lines = []
        for shape, change in was.items():
            other = is_.get(shape)
            if other is None and change["outcome"] == "to apply" and (change["target"], change["operation"]) in done:
                continue
            if (other is not None and other["outcome"] == "already so" and other["before"] == change["after"]
                    and (change["target"], change["operation"]) in done):
                continue
            if other is None:
                lines.append(f"{change['operation']}: planned, no longer part of the run")
            elif (other["before"], other["after"], other["outcome"]) != (change["before"], change["after"],
                                                                         change["outcome"]):
                lines.append(f"{change['operation']}: planned {_describe(change)} ({change['outcome']}), "
                             f"now {_describe(other)} ({other['outcome']})")
        lines += [f"{c['operation']}: not in the plan, now {_describe(c)}" for s, c in is_.items() if s not in was]
        if lines:
            drift[label] = lines
    return drift


class PlanCheck:
    """Applying a plan: each change of a planned account must be one the plan listed, to the plan's state.

    The engine re-plans before applying and compares whole accounts (:func:`drift_between`); this check
    closes the gap while the changes are sent. It compares where each change leads, not where it starts:
    an earlier step of the same plan may move the state a later one starts from (on OpenLDAP the
    password replacement lifts a lock, which the lock step then puts back).
    """

    def __init__(self, plan: Plan) -> None:
        self.accounts = set(plan.approved_labels())
        self.changes = {(a["account"], c["step"], c["operation"]): c
                        for a in plan.accounts() if not a.get("refused") for c in a["changes"]}

    def __call__(self, record: dict[str, Any]) -> str | None:
        account = str(record.get("account"))
        if account not in self.accounts:
            return None
        planned = self.changes.get((account, record["step"], record["operation"]))
        if planned is None:
            return f"{record['operation']} on {account} is not in the approved plan"
        if planned["after"] != record["after"]:
            return (f"{record['operation']} on {account} would now lead to {json.dumps(record['after'], sort_keys=True)}; "
                    f"the approved plan to {json.dumps(planned['after'], sort_keys=True)}")
        return None


@dataclass
class Applying:
    """A live run that applies an approved plan: its check, and what the journal says first (approval, drift)."""

    plan: Plan
    check: PlanCheck
    records: list[tuple[str, dict[str, Any]]]

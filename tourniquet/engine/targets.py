"""Which accounts a step may change: the guard that runs before anything of the step is sent.

For each invocation of a changing action, :class:`TargetGuard` refuses protected targets,
entries outside the site's ``base_dn`` and entries that are not a person's account (an OU, a group,
a policy, a service object, the admin: whatever the playbook passed, an account this run did not
resolve is re-read and must pass the same rules as ``directory.resolve``) — checked against the
account as the step names it *and* as the directory has it — drops a second spelling of an entry already in the step, and asks for
approval when the accounts this run touches exceed the blast-radius limit. Refusals and approvals
are journaled and kept in the run's summary.

May import: ``engine.approvals``, ``engine.executor`` (``Invocation``), ``engine.guardrails``,
``engine.playbook``, ``engine.summary``, ``registry``, ``journal``, ``site``, ``model``,
``tourniquet.errors``. Imported by: ``engine.run``.
"""

from __future__ import annotations

from typing import Any

import structlog

from tourniquet import registry
from tourniquet.engine.approvals import ApprovalRequest, Approver, ask_with_timeout
from tourniquet.engine.executor import Invocation
from tourniquet.engine.guardrails import canonical_dn, identity_of, is_protected
from tourniquet.engine.playbook import Step
from tourniquet.engine.summary import RunSummary, label_of
from tourniquet.errors import ApprovalRejected, BlastRadiusExceeded, ConnectorError, GuardrailError, NotFound
from tourniquet.journal import Journal
from tourniquet.model import dn_within
from tourniquet.site import Site

__all__ = ["TargetGuard"]

log = structlog.get_logger("tourniquet")


class TargetGuard:
    """One run's guardrails over the accounts its steps change (the run holds one for its whole life)."""

    def __init__(
        self,
        *,
        site: Site,
        journal: Journal,
        summary: RunSummary,
        incident: str,
        playbook: str,
        dry_run: bool,
        approver: Approver,
        limit: int,
        protected: list[str],
        approval_timeout: float,
    ) -> None:
        self.site = site
        self.journal = journal
        self.summary = summary
        self.incident = incident
        self.playbook = playbook
        self.dry_run = dry_run
        self.approver = approver
        self.limit = limit
        self.protected = protected
        self.approval_timeout = approval_timeout
        #: Canonical keys of the accounts earlier steps of this run were allowed to change.
        self.touched: set[str] = set()
        self.approved_up_to = 0
        #: Accounts as the directory gave them to earlier steps of this run (canonical DN → identity).
        self.seen: dict[str, dict[str, Any]] = {}

    def admit(self, step: Step, spec: registry.ActionSpec,
              invocations: list[Invocation]) -> tuple[list[Invocation], list[str]]:
        """Drop protected targets, then ask for approval when the blast radius exceeds the limit.

        Protection is checked against the account as the step names it *and* as the directory
        has it (DN, uid, groups): as an earlier step of this run read it (resolve), or read now for an
        account this run has not seen, so a hand-written or stale account cannot slip through.
        Nothing has been sent for this step when this runs. Returns the allowed invocations and the
        canonical keys of the accounts they change.
        """
        if not spec.changes or spec.target is None:
            return invocations, []
        allowed: list[Invocation] = []
        keys: set[str] = set()
        for invocation in invocations:
            account = invocation.arguments.get(spec.target)
            live, not_a_person = self._known_identity(account)
            pattern = is_protected(account, self.protected, also=[live] if live else ())
            outside = self._outside_base(account, live)
            if pattern is not None or outside or not_a_person:
                label = label_of(account)
                reason = f"protected by {pattern!r}" if pattern is not None else outside or not_a_person
                self.summary.refused.append({"step": step.id, "account": label, "reason": reason})
                self.journal.write("refused", step=step.id, action=spec.name, account=label, reason=reason)
                log.warning("account.protected", account=label, pattern=pattern)
                continue
            key = _account_key(live or account)
            if key in keys:
                # Two spellings of one entry in one step: change it once (two concurrent changes of the
                # same entry would both read "before" and both be recorded as applied).
                self.journal.write("duplicate", step=step.id, account=label_of(account), key=key)
                log.warning("account.duplicate", account=label_of(account))
                continue
            allowed.append(invocation)
            keys.add(key)
        wanted = self.touched | keys
        if len(wanted) > max(self.limit, self.approved_up_to):
            self._approve(step, sorted(wanted))
        self.touched = wanted
        return allowed, sorted(keys)

    def remember_accounts(self, value: Any, depth: int = 0) -> None:
        """Note every account (dn, uid, groups) a step's result holds: the directory's view, read by this run.

        Accounts sit near the top of a result (``accounts: [...]``, ``results: [...]``): three levels are
        looked at, not every attribute of every snapshot.
        """
        if depth > 3:
            return
        if isinstance(value, dict):
            if isinstance(value.get("dn"), str) and "uid" in value and isinstance(value.get("groups"), list):
                self.seen[canonical_dn(value["dn"])] = identity_of(value)
            for key, inner in value.items():
                if isinstance(inner, (dict, list)) and key != "attributes":
                    self.remember_accounts(inner, depth + 1)
        elif isinstance(value, list):
            for inner in value:
                self.remember_accounts(inner, depth + 1)

    def _outside_base(self, account: Any, live: dict[str, Any] | None) -> str:
        """A reason when the entry is not under the site's base_dn (playbooks only change accounts there)."""
        base = self.site.config.directory.base_dn
        for identity in (identity_of(account), live or {}):
            dn = identity.get("dn") or ""
            if dn and not dn_within(dn, base):
                return f"outside {base}"
        return ""

    def _known_identity(self, account: Any) -> tuple[dict[str, Any] | None, str]:
        """The account as the directory gave it to this run, else as the directory has it now (None if
        unknown), and why it is not a person's account ("" when it is, or when that cannot be said)."""
        claimed = identity_of(account)
        if not claimed["dn"]:
            return None, ""
        seen = self.seen.get(canonical_dn(claimed["dn"]))
        if seen is not None and _same_identity(seen, claimed):
            return seen, ""
        return self._live_identity(claimed["dn"])

    def _live_identity(self, dn: str) -> tuple[dict[str, Any] | None, str]:
        """The entry re-read by the rules of ``directory.resolve`` (a person's account under base_dn, matching
        the site's user filter, not an OU, group, policy or service object): its DN, uid and groups, or why not."""
        try:
            account = self.site.directory.resolve(dn)
        except NotFound as exc:
            return None, f"not a person's account: {exc.detail}"
        except ConnectorError as exc:
            log.warning("guard.live_read_failed", dn=dn, error=str(exc))
            return None, ""  # the claimed identity is still checked; the action itself will meet the same error
        return {"dn": account.dn, "uid": account.uid or "", "groups": list(account.groups)}, ""

    def _approve(self, step: Step, accounts: list[str]) -> None:
        reason = f"{len(accounts)} accounts exceed the limit of {self.limit}"
        if self.dry_run:
            self.journal.write("approval", step=step.id, status="would be required", reason=reason, accounts=accounts)
            self.summary.approvals.append({"step": step.id, "status": "would be required", "reason": reason})
            self.approved_up_to = len(accounts)  # the run asks once for these accounts, as the plan says
            return
        request = ApprovalRequest(
            incident=self.incident, playbook=self.playbook, step=step.id, reason=reason,
            accounts=accounts, limit=self.limit, timeout_seconds=self.approval_timeout,
        )
        self.journal.write("approval", step=step.id, status="requested", reason=reason, accounts=accounts,
                           timeout_seconds=self.approval_timeout)
        self.journal.commit()
        from tourniquet.notices.dispatch import approval_awaited

        approval_awaited(self.site, self.journal, playbook=self.playbook, reason=reason,
                         timeout_seconds=self.approval_timeout)
        decision = ask_with_timeout(self.approver, request)
        record = {"step": step.id, "status": "approved" if decision.approved else "rejected",
                  "approver": decision.approver, "comment": decision.comment, "reason": reason}
        self.journal.write("approval", **record)
        self.summary.approvals.append(record)
        if not decision.approved:
            error: GuardrailError = (
                BlastRadiusExceeded(f"{reason} and nobody approved ({decision.comment})")
                if not decision.approver else ApprovalRejected(f"{decision.approver} rejected: {decision.comment}")
            )
            raise error
        self.approved_up_to = len(accounts)


def _same_identity(seen: dict[str, Any], claimed: dict[str, Any]) -> bool:
    """The claimed account says no more and no less than what the directory gave this run."""
    return (canonical_dn(seen["dn"]) == canonical_dn(claimed["dn"]) and seen["uid"] == claimed["uid"]
            and sorted(map(str, seen["groups"])) == sorted(map(str, claimed["groups"])))


def _account_key(account: Any) -> str:
    """One key per directory entry (canonical DN), so two spellings of an account count once."""
    identity = identity_of(account)
    return canonical_dn(identity["dn"]) if identity["dn"] else "uid=" + identity["uid"].strip().lower()

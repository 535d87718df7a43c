"""What a run did, per account and per system, folded from its journal records: the one source every renderer reads.

The ticket body, the report's headline, the CLI's last lines, the Prefect state and the artifacts
all say what :func:`fold` says, in one vocabulary (:class:`Kind`): *applied*, *already so*,
*planned*, *skipped* (why), *refused* (why), *failed* (why). A skip is never work done: an account
is contained only when some change reached it (applied, or already so) and nothing was refused or
failed for it. The headline and the exit code (:class:`ExitCode`, the one list of the command's
codes) follow from the same fold, so they cannot disagree with the journal.

Pure: records in, an :class:`Outcomes` out (no I/O, no Prefect).
May import: the standard library, ``exit_codes``. Imported by: ``engine`` (the run's scope, the report),
``actions.tickets``, ``flows``, ``cli``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tourniquet.exit_codes import ExitCode, exit_codes_markdown

__all__ = ["Kind", "Entry", "REGION_STEP", "AccountOutcome", "Outcomes", "ExitCode", "fold", "short_reason", "listed", "WHO_APPROVES",
           "shown_name", "exit_codes_markdown"]


class Kind(StrEnum):
    """What happened to one account in one step: the only words any renderer uses."""

    APPLIED = "applied"
    ALREADY = "already so"
    PLANNED = "planned"
    SKIPPED = "skipped"
    REFUSED = "refused"
    FAILED = "failed"
    #: Across several sites: an account in a region that could not be reached; a re-run will contain it.
    WAITING = "waiting"
    #: Not about an account: a ticket write waiting in the outbox (the ticket system was unreachable).
    QUEUED = "queued"


#: When one step has several records for an account (a group per change, a failure after a change), the
#: strongest word wins: a failure is never hidden by an earlier success.
STRENGTH = {Kind.FAILED: 6, Kind.WAITING: 6, Kind.REFUSED: 5, Kind.QUEUED: 4, Kind.APPLIED: 3, Kind.PLANNED: 2, Kind.ALREADY: 1,
            Kind.SKIPPED: 0}
#: Error kinds that are the tool refusing to act (not something that broke).
#: The step of an entry about an account's region as a whole, across several sites: its part did not run
#: (the region failed), or an earlier run of the incident contained it there.
REGION_STEP = "region"
REFUSAL_KINDS = frozenset({"AccountNotFound", "NotAnAccount", "AmbiguousAccount", "NotFound", "GuardrailError",
                           "ProtectedAccount", "UnsafeToChange", "NotAPerson", "RefusedTarget"})


@dataclass(frozen=True)
class Entry:
    """One account (or, with ``account`` empty, one other target such as the ticket) in one step."""

    step: str
    system: str
    account: str
    kind: Kind
    why: str = ""
    operation: str = ""
    target: str = ""


@dataclass
class AccountOutcome:
    """Everything that happened to one account, step by step (the strongest word per step)."""

    account: str
    entries: dict[str, Entry] = field(default_factory=dict)

    def add(self, entry: Entry) -> None:
        known = self.entries.get(entry.step)
        if known is None or STRENGTH[entry.kind] > STRENGTH[known.kind]:
            self.entries[entry.step] = entry

    def kinds(self) -> set[Kind]:
        return {entry.kind for entry in self.entries.values()}

    def worst(self) -> Entry | None:
        """The first refusal, else the first failure, else the first skip: why it is not contained."""
        for kind in (Kind.REFUSED, Kind.WAITING, Kind.FAILED, Kind.SKIPPED):
            for entry in self.entries.values():
                if entry.kind is kind:
                    return entry
        return None

    def reached(self, dry_run: bool) -> bool:
        """Contained (a run) or going to be (a plan): a change reached it, and nothing was refused or failed."""
        kinds = self.kinds()
        done = {Kind.APPLIED, Kind.ALREADY} | ({Kind.PLANNED} if dry_run else set())
        return bool(kinds & done) and not kinds & {Kind.REFUSED, Kind.FAILED, Kind.WAITING}

    def why_not(self) -> tuple[Kind, str]:
        """The word and the phrase for why it is not contained: ``x is protected``, ``jdupnt (no such account)``,
        ``y (lock: timed out)``."""
        worst = self.worst()
        if worst is None:
            return Kind.SKIPPED, f"{self.account} (nothing was done)"
        reason = short_reason(worst.why)
        if worst.kind is Kind.REFUSED and reason.startswith("protected"):
            return worst.kind, f"{self.account} is protected"
        if worst.step in ("", REGION_STEP) or (worst.kind in (Kind.REFUSED, Kind.WAITING) and worst.step == "resolve"):
            return worst.kind, f"{self.account} ({reason})"
        return worst.kind, f"{self.account} ({worst.step}{': ' + reason if reason else ''})"


@dataclass
class Outcomes:
    """The fold of one run's records: accounts, other targets, approvals, and the words for them."""

    dry_run: bool = False
    #: What a handled account is (the playbook's ``headline_word``): contained, given back, reinstated.
    word: str = "contained"
    accounts: dict[str, AccountOutcome] = field(default_factory=dict)
    others: list[Entry] = field(default_factory=list)
    #: Steps in the order the run started them, with their action (``lock`` → ``directory.lock``).
    steps: dict[str, str] = field(default_factory=dict)
    #: Approvals the run asked for or (a plan) would ask for: step, status, reason, approver.
    approvals: list[dict[str, str]] = field(default_factory=list)
    #: Failures not about an account (a step that stopped the run, an unknown id list).
    problems: list[str] = field(default_factory=list)
    #: The run's own last word, when it ended: its status and error.
    status: str = ""
    error: str = ""

    # -- figures

    def reached(self) -> list[str]:
        """Accounts contained (a run) or planned (a plan), sorted."""
        return sorted(name for name, outcome in self.accounts.items() if outcome.reached(self.dry_run))

    def not_reached(self) -> list[tuple[str, Kind, str]]:
        """Accounts not contained, each with its word and why (short, the account named in it)."""
        return [(name, *outcome.why_not()) for name, outcome in sorted(self.accounts.items())
                if not outcome.reached(self.dry_run)]

    def needed_approvals(self) -> list[dict[str, str]]:
        """Approvals a plan says the run will wait for."""
        return [a for a in self.approvals if a.get("status") == "would be required"]

    def counts(self) -> dict[str, dict[Kind, list[str]]]:
        """Per step: each word and the accounts it applies to (sorted)."""
        table: dict[str, dict[Kind, list[str]]] = {step: {} for step in self.steps}
        for name, outcome in sorted(self.accounts.items()):
            for entry in outcome.entries.values():
                table.setdefault(entry.step, {}).setdefault(entry.kind, []).append(name)
        return {step: kinds for step, kinds in table.items() if kinds}

    def by_system(self) -> dict[str, dict[Kind, int]]:
        """Per system: how many account-steps ended with each word (the table a dashboard shows)."""
        table: dict[str, dict[Kind, int]] = {}
        for outcome in self.accounts.values():
            for entry in outcome.entries.values():
                row = table.setdefault(entry.system, {})
                row[entry.kind] = row.get(entry.kind, 0) + 1
        return table

    def touched(self) -> list[str]:
        """Accounts some change reached (applied, already so, planned), contained or not."""
        done = {Kind.APPLIED, Kind.ALREADY, Kind.PLANNED}
        return sorted(name for name, outcome in self.accounts.items() if outcome.kinds() & done)

    @property
    def stopped(self) -> bool:
        """The run ended before its last step (an error stopped it, or it was rolled back)."""
        return self.status in ("failed", "rolled back")

    def exit_code(self) -> ExitCode:
        if not self.accounts:  # a playbook that changes no account: it did what it says, or it stopped
            return ExitCode.NONE if self.stopped or not self.status else ExitCode.CONTAINED
        if not self.touched():
            return ExitCode.NONE
        if self.dry_run and self.needed_approvals():
            return ExitCode.NEEDS_APPROVAL
        if len(self.reached()) == len(self.accounts) and not self.stopped:
            return ExitCode.CONTAINED
        return ExitCode.PARTIAL

    @property
    def state_name(self) -> str:
        """The Prefect state name: Contained, Partially contained, Not contained (Planned… for a plan)."""
        code = self.exit_code()
        if self.dry_run:
            return {ExitCode.NONE: "Nothing planned", ExitCode.PARTIAL: "Partially planned",
                    ExitCode.NEEDS_APPROVAL: "Needs approval"}.get(code, "Planned")
        return {ExitCode.NONE: f"Not {self.word}", ExitCode.PARTIAL: f"Partially {self.word}"}.get(
            code, self.word.capitalize())

    # -- words

    def headline(self) -> str:
        """``3 of 3 accounts contained`` / ``1 of 2 contained; refused: jdupnt (no such account)`` /
        ``nothing contained: breakglass-ward2 is protected``; a plan names the approvals first."""
        word = "planned" if self.dry_run else self.word
        reached, total = self.reached(), len(self.accounts)
        missing = self.not_reached()
        if not total and not self.stopped and self.status:
            text = f"no account to {'plan' if self.dry_run else 'change'} in this playbook: {self.status}"
        elif not self.touched():
            why = "; ".join(phrase for _, _, phrase in missing[:5])
            if len(missing) > 5:
                why += f"; … and {len(missing) - 5} more"
            text = f"nothing {word}: " + (why or short_reason(self.error) or "no account was named")
        elif len(reached) == total:
            text = f"{total} of {total} accounts {word}"
        else:
            text = f"{len(reached)} of {total} {word}; " + _grouped(missing)
        if self.stopped and self.touched():
            text += f"; the run {'was rolled back' if self.status == 'rolled back' else 'stopped'}: " \
                    f"{short_reason(self.error)}"
        approvals = self.needed_approvals()
        if self.dry_run and approvals:
            text = f"needs approval first ({_approvals_line(approvals)}); {text}"
        return text

    def reached_line(self) -> str:
        """``contained: a, b, c`` (short: the first ten, then how many more)."""
        word = "planned" if self.dry_run else self.word
        return f"{word}: {listed(self.reached())}" if self.reached() else f"{word}: none"

    def lines(self) -> list[str]:
        """The summary as plain lines (the ticket body, the CLI): headline, accounts, then each step."""
        out = [self.headline(), self.reached_line()]
        for _, kind, phrase in self.not_reached():
            out.append(f"not {'planned' if self.dry_run else self.word} ({kind.value}): {phrase}")
        for approval in self.needed_approvals():
            out.append(f"approval needed at step {approval.get('step', '')}: {approval.get('reason', '')} "
                       f"({WHO_APPROVES})")
        for approval in self.approvals:
            if approval.get("status") in ("approved", "rejected"):
                out.append(f"approval at step {approval.get('step', '')}: {approval['status']} by "
                           f"{approval.get('approver') or 'nobody'} ({approval.get('reason', '')})")
        for step, kinds in self.counts().items():
            action = self.steps.get(step, "")
            parts = [_kind_part(kind, names, self._reasons(step, kind))
                     for kind, names in sorted(kinds.items(), key=lambda item: -STRENGTH[item[0]])]
            out.append(f"{step}{f' ({action})' if action else ''}: " + "; ".join(parts))
        for entry in self.others:
            if entry.system.startswith("tickets"):
                continue  # the ticket's own writes: the ticket is where this is read
            out.append(f"{entry.step} ({entry.target or entry.system}): {entry.kind.value}"
                       + (f" ({short_reason(entry.why)})" if entry.why else ""))
        out += [f"problem: {problem}" for problem in self.problems]
        return out

    def text(self) -> str:
        return "\n".join(self.lines())

    def _reasons(self, step: str, kind: Kind) -> list[str]:
        found: list[str] = []
        for outcome in self.accounts.values():
            entry = outcome.entries.get(step)
            if entry is not None and entry.kind is kind and entry.why and short_reason(entry.why) not in found:
                found.append(short_reason(entry.why))
        return found

    def as_dict(self) -> dict[str, Any]:
        """For a playbook expression (``${{ outcome.summary }}``) and a flow's result: JSON-able."""
        return {
            "headline": self.headline(), "summary": self.text(), "contained": self.reached(),
            "not_contained": [name for name, _, _ in self.not_reached()], "total": len(self.accounts),
            "exit_code": int(self.exit_code()), "state": self.state_name,
        }


WHO_APPROVES = ("anyone with the Prefect UI (the paused run's form) or `tourniquet approve RUN --approver NAME`; "
                "protected accounts cannot be approved")


def listed(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" … and {len(names) - limit} more" if len(names) > limit else "")


def _grouped(missing: list[tuple[str, Kind, str]]) -> str:
    """``refused: jdupnt (no such account); failed: x (lock: timed out)``, at most five named."""
    groups: dict[Kind, list[str]] = {}
    for _, kind, phrase in missing[:5]:
        groups.setdefault(kind, []).append(phrase)
    text = "; ".join(f"{kind.value}: {', '.join(phrases)}" for kind, phrases in groups.items())
    return text + (f"; … and {len(missing) - 5} more not contained" if len(missing) > 5 else "")


def _kind_part(kind: Kind, names: list[str], reasons: list[str]) -> str:
    why = f" — {'; '.join(reasons[:3])}" if reasons else ""
    return f"{kind.value} {len(names)} ({listed(names)}){why}"


def _approvals_line(approvals: list[dict[str, str]]) -> str:
    return "; ".join(f"{a.get('step', '')}: {a.get('reason', '')}" for a in approvals)


#: The longest account name a headline repeats (a hostile id of 5,000 characters is cut; the journal has it whole).
NAME_MAX = 80


def shown_name(value: Any) -> str:
    """An account as the renderers name it: control characters escaped, at most :data:`NAME_MAX` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value or ""))
    return text if len(text) <= NAME_MAX else text[:NAME_MAX - 1] + "…"


_NO_ACCOUNT = re.compile(r"^no (account|entry) with ")


def short_reason(text: str | None) -> str:
    """A reason short enough for a headline: ``no such account``, ``protected by 'uid=breakglass-*'``."""
    text = (text or "").strip()
    text = re.sub(r"^refused: ", "", text)
    text = re.sub(r"^'[^']*': ", "", text)
    if _NO_ACCOUNT.match(text):
        return "no such account"
    if "is ambiguous" in text or text.startswith("ambiguous"):
        return "ambiguous: several accounts match"
    if "not a practitioner account" in text or "not an account" in text:
        return "not a person's account"
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= 120 else first[:119] + "…"


# -- the fold


def fold(records: Iterable[Mapping[str, Any]], *, run: str | None = None, playbook: str | None = None,
         dry_run: bool | None = None) -> Outcomes:
    """Fold journal records into per-account, per-step outcomes.

    ``run``: only that run's records (what one command did). ``playbook``: every run of that playbook in
    the journal (what the incident's ticket says: a re-run's "already so" does not hide the first run's
    "applied"). Neither: every record.
    """
    outcomes = Outcomes(dry_run=bool(dry_run))
    intents: dict[tuple[str, str, str, str], Mapping[str, Any]] = {}
    applied: dict[str, Mapping[str, Any]] = {}  # hash → applied change about an account (a rollback undoes it)
    runs: set[str] = set()
    for record in records:
        if playbook is not None and record.get("type") == "run" and record.get("status") == "started" \
                and record.get("playbook") == playbook:
            runs.add(str(record.get("run")))
        if run is not None and record.get("run") != run:
            continue
        if playbook is not None and str(record.get("run")) not in runs:
            continue
        if record.get("type") == "change" and record.get("outcome") == "applied" and record.get("account"):
            applied[str(record.get("hash"))] = record
        if record.get("type") == "undo" and record.get("status") == "done" and str(record.get("undoes")) in applied:
            _add(outcomes, applied[str(record.get("undoes"))], Kind.FAILED, "rolled back: the run undid it")
            continue
        _take(outcomes, record, intents)
    for record in intents.values():  # sent, never confirmed: it may or may not have taken
        _add(outcomes, record, Kind.FAILED, "sent but not confirmed in the journal: check it")
    return outcomes


def _key(record: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (str(record.get("step")), str(record.get("target")), str(record.get("operation")), repr(record.get("after")))


def _take(outcomes: Outcomes, record: Mapping[str, Any], intents: dict[tuple[str, str, str, str],
          Mapping[str, Any]]) -> None:
    kind = record.get("type")
    if kind == "run":
        if record.get("status") == "started":
            outcomes.status, outcomes.error = "", ""  # a run that resumes an earlier one starts afresh
            if record.get("dry_run") is not None:
                outcomes.dry_run = bool(record.get("dry_run"))
            outcomes.word = str(record.get("word") or outcomes.word)
        else:
            outcomes.status, outcomes.error = str(record.get("status") or ""), str(record.get("error") or "")
    elif kind == "step" and record.get("status") == "started":
        outcomes.steps.setdefault(str(record.get("step")), str(record.get("action") or ""))
    elif kind == "intent":
        intents[_key(record)] = record
    elif kind == "change":
        intents.pop(_key(record), None)
        word = {"applied": Kind.APPLIED, "noop": Kind.ALREADY, "planned": Kind.PLANNED,
                "failed": Kind.FAILED}.get(str(record.get("outcome")))
        if word is not None:
            why = str(record.get("error") or "")
            if record.get("implied_by"):
                why = f"set by {record['implied_by']}"  # the same words in the plan and in the run
            _add(outcomes, record, word, why)
    elif kind == "skipped":
        _add(outcomes, record, Kind.SKIPPED, str(record.get("reason") or ""))
    elif kind == "refused":
        _add(outcomes, record, Kind.REFUSED, str(record.get("reason") or ""))
    elif kind == "failure":
        refused = record.get("kind") in REFUSAL_KINDS or str(record.get("error", "")).startswith("refused")
        if record.get("account"):
            _add(outcomes, record, Kind.REFUSED if refused else Kind.FAILED, str(record.get("error") or ""))
        else:
            outcomes.problems.append(f"{record.get('step')}: {record.get('error')}")
    elif kind == "ticket" and record.get("status") == "queued":
        for index in range(len(outcomes.others) - 1, -1, -1):
            entry = outcomes.others[index]
            if entry.step == record.get("step"):
                outcomes.others[index] = Entry(entry.step, entry.system, "", Kind.QUEUED,
                                               "waiting in the outbox: the ticket system was unreachable",
                                               entry.operation, entry.target)
                break
    elif kind == "approval":
        approval = {k: str(record.get(k) or "") for k in ("step", "status", "reason", "approver")}
        if approval not in outcomes.approvals:  # a re-run asked again: the same decision, said once
            outcomes.approvals.append(approval)


def _add(outcomes: Outcomes, record: Mapping[str, Any], kind: Kind, why: str) -> None:
    step = str(record.get("step") or "")
    system = str(record.get("system") or str(outcomes.steps.get(step, "")).split(".")[0])
    account = shown_name(record.get("account"))
    entry = Entry(step=step, system=system, account=account, kind=kind, why=why,
                  operation=str(record.get("operation") or ""), target=str(record.get("target") or ""))
    if not account:
        for index, known in enumerate(outcomes.others):  # one line per step and target, the strongest word
            if (known.step, known.target) == (entry.step, entry.target):
                if STRENGTH[entry.kind] > STRENGTH[known.kind]:
                    outcomes.others[index] = entry
                return
        outcomes.others.append(entry)
        return
    outcomes.accounts.setdefault(account, AccountOutcome(account)).add(entry)

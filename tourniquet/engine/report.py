"""The run report: what was asked, what was done per account, what failed, where the proof is.

Its headline and its accounts table are the run's outcomes folded from the journal
(:mod:`tourniquet.outcomes`), in the words every other renderer uses. Tables are kept narrow enough
for the Prefect UI's artifact page: the outcome comes right after the account, and a change is one
short ``attribute: before → after`` cell, not two JSON columns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tourniquet.engine.summary import RunSummary
from tourniquet.outcomes import WHO_APPROVES, Entry, short_reason
from tourniquet.secrets import mask

__all__ = ["render_markdown", "account_rows", "write_report", "describe_change", "report_images"]


def account_rows(summary: RunSummary) -> list[dict[str, str]]:
    """One row per account: whether it is contained, then each step's word (the table artifact)."""
    outcomes = summary.outcome()
    reached = set(outcomes.reached())
    word = "planned" if outcomes.dry_run else outcomes.word
    rows = []
    for account, outcome in sorted(outcomes.accounts.items()):
        state = word if account in reached else f"not {word}"
        rows.append({"account": account, "outcome": state,
                     **{step: entry_words(entry) for step, entry in outcome.entries.items()}})
    return rows


def entry_words(entry: Entry) -> str:
    """``applied``, ``already so — set by scramble_password``, ``skipped — no identity provider configured``."""
    return entry.kind.value + (f" — {short_reason(entry.why)}" if entry.why else "")


#: A change's outcome in the report's words (the journal says ``noop``; people say "already so").
WORDS = {"noop": "already so"}


#: The widest a change cell gets (the full values are in the journal; failures are listed in full below).
CELL = 60


def _cell(value: Any, width: int = 0) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    text = text.replace("\n", " ")
    if width and len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("|", "\\|")


def _shown(value: Any) -> str:
    if value in (None, [], "", {}):
        return "(none)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def describe_change(before: Any, after: Any) -> str:
    """``pwdAccountLockedTime: (none) → 000001010000Z``: only what differs, one short line."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
        if not keys:
            return "no difference"
        return "; ".join(f"{k}: {_shown(before.get(k))} → {_shown(after.get(k))}" for k in keys)
    return f"{_shown(before)} → {_shown(after)}"


def _remains(results: dict[str, Any]) -> list[str]:
    """What the run could not end (tokens already issued, a brokered provider's session), as steps said it."""
    found: list[str] = []
    for result in results.values():
        candidates = result.get("results", [result]) if isinstance(result, dict) else []
        for candidate in candidates:
            for text in (candidate.get("remains") or []) if isinstance(candidate, dict) else []:
                if isinstance(text, str) and text not in found:
                    found.append(text)
    return found


def report_images(summary: RunSummary) -> dict[str, str]:
    """Pictures the steps drew (a result's ``timeline``: a PNG in the evidence folder), relative to the report."""
    images: dict[str, str] = {}
    if summary.journal is None or summary.dry_run:
        return images
    folder = summary.journal.parent.resolve()
    for step, result in summary.results.items():
        picture = result.get("timeline") if isinstance(result, dict) else None
        if isinstance(picture, str) and picture.endswith(".png"):
            path = Path(picture).resolve()
            images[step] = path.relative_to(folder).as_posix() if path.is_relative_to(folder) else path.as_uri()
    return images


def render_markdown(summary: RunSummary, inputs: dict[str, Any] | None = None, links: dict[str, str] | None = None,
                    images: dict[str, str] | None = None) -> str:
    mode = "DRY-RUN PLAN (nothing was changed)" if summary.dry_run else "Run"
    outcomes = summary.outcome()
    lines = [
        f"# {mode}: {summary.playbook} — incident `{summary.incident}`",
        "",
        f"**{outcomes.headline()}**",
        "",
        f"- {outcomes.reached_line()}",
    ]
    lines += [f"- not {'planned' if summary.dry_run else outcomes.word} ({kind.value}): {phrase}"
              for _, kind, phrase in outcomes.not_reached()]
    lines += [f"- approval needed at step {a['step']}: {a['reason']} ({WHO_APPROVES})"
              for a in outcomes.needed_approvals()]
    lines += ["", f"**Status:** {summary.status}" + (f" — {summary.error}" if summary.error else ""), ""]
    if inputs:
        lines += ["## What was asked", ""]
        lines += [f"- **{name}**: {_cell(value)}" for name, value in inputs.items()]
        lines.append("")
    lines += ["## Steps", "", "| step | status |", "|---|---|"]
    lines += [f"| {step} | {status} |" for step, status in summary.steps.items()]
    lines.append("")
    rows = account_rows(summary)
    if rows:
        columns = ["outcome", *dict.fromkeys(key for row in rows for key in row if key not in ("account", "outcome"))]
        lines += ["## Accounts", "", "| account | " + " | ".join(columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for row in rows:
            lines.append(f"| {row['account']} | " + " | ".join(_cell(row.get(c, ""), CELL) for c in columns) + " |")
        lines.append("")
    if summary.changes:
        title = "Changes that would be made" if summary.dry_run else "Changes"
        lines += [f"## {title}", "", "| account | outcome | operation | change |", "|---|---|---|---|"]
        for c in summary.changes:
            target = c.account or c.target.replace(f":{summary.incident}", "")  # "ticket", not "ticket:<incident>"
            change = describe_change(c.before, c.after)
            if c.implied_by:
                change = f"set by {c.implied_by}"
            lines.append(f"| {_cell(target, 40)} | {WORDS.get(c.outcome, c.outcome)} | {c.operation} | "
                         f"{_cell(change, CELL)} |")
        lines.append("")
    if summary.refused:
        lines += ["## Refused by guardrails", ""]
        lines += [f"- {r['account']} ({r['step']}): {r['reason']}" for r in summary.refused]
        lines.append("")
    if summary.approvals:
        lines += ["## Approvals", ""]
        lines += [f"- {a['step']}: {a['status']} {a.get('approver', '')} {a.get('comment', '')} — {a['reason']}"
                  for a in summary.approvals]
        lines.append("")
    if summary.failures:
        lines += ["## Failures", ""]
        lines += [f"- {f['step']} {f['item']}: {f['error']}" for f in summary.failures]
        lines.append("")
    remains = _remains(summary.results)
    if remains:
        lines += ["## What remains", ""]
        lines += [f"- {text}" for text in remains]
        lines.append("")
    if summary.rolled_back:
        lines += ["## Rolled back", ""]
        lines += [f"- {r['target']} {r['operation']}: {r['status']}" for r in summary.rolled_back]
        lines.append("")
    if summary.notifications:
        lines += ["## Notifications", ""]
        lines += [f"- {_cell(text, 400)}" for text in summary.notifications]
        lines.append("")
    for step, picture in (images if images is not None else report_images(summary)).items():
        lines += [f"## Timeline ({step})", "", f"![accesses per day per account, anomalous part in red]({picture})", ""]
    lines += ["## Evidence", "", f"- journal: `{summary.journal}`"]
    if summary.directory_transport:
        lines.append(f"- directory reached through: {summary.directory_transport}")
    for name, target in (links or {}).items():
        lines.append(f"- {name}: {target}")
    return "\n".join(lines) + "\n"


def write_report(summary: RunSummary, markdown: str) -> Path:
    """Write the report next to the journal, masked (an outside system's error text is in it)."""
    assert summary.journal is not None
    path = summary.journal.parent / ("plan-report.md" if summary.dry_run else "report.md")
    path.write_text(mask(markdown), encoding="utf-8")
    summary.report = path
    return path

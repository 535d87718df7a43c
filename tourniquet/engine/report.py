"""The run report: what was asked, what was done per account, what failed, where the proof is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tourniquet.engine.run import RunSummary
from tourniquet.secrets import mask

__all__ = ["render_markdown", "account_rows", "write_report"]


def account_rows(summary: RunSummary) -> list[dict[str, str]]:
    """One row per account: each operation and its outcome (the table artifact)."""
    rows = []
    for account, operations in sorted(summary.accounts().items()):
        rows.append({"account": account, **{op: outcome for op, outcome in operations.items()}})
    return rows


def _cell(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: RunSummary, inputs: dict[str, Any] | None = None, links: dict[str, str] | None = None) -> str:
    mode = "DRY-RUN PLAN (nothing was changed)" if summary.dry_run else "Run"
    lines = [
        f"# {mode}: {summary.playbook} — incident `{summary.incident}`",
        "",
        f"**Status:** {summary.status}" + (f" — {summary.error}" if summary.error else ""),
        "",
    ]
    if inputs:
        lines += ["## What was asked", ""]
        lines += [f"- **{name}**: {_cell(value)}" for name, value in inputs.items()]
        lines.append("")
    lines += ["## Steps", "", "| step | status |", "|---|---|"]
    lines += [f"| {step} | {status} |" for step, status in summary.steps.items()]
    lines.append("")
    rows = account_rows(summary)
    if rows:
        columns = sorted({key for row in rows for key in row if key != "account"})
        lines += ["## Accounts", "", "| account | " + " | ".join(columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for row in rows:
            lines.append(f"| {row['account']} | " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
        lines.append("")
    if summary.changes:
        title = "Changes that would be made" if summary.dry_run else "Changes"
        lines += [f"## {title}", "", "| step | account | operation | before | after | outcome |",
                  "|---|---|---|---|---|---|"]
        for c in summary.changes:
            lines.append(f"| {c.step} | {c.target} | {c.operation} | {_cell(c.before)} | {_cell(c.after)} | {c.outcome} |")
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
    if summary.rolled_back:
        lines += ["## Rolled back", ""]
        lines += [f"- {r['target']} {r['operation']}: {r['status']}" for r in summary.rolled_back]
        lines.append("")
    lines += ["## Evidence", "", f"- journal: `{summary.journal}`"]
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

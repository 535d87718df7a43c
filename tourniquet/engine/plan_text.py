"""A plan in words: the terminal's lines and the approval form's Markdown, from the plan file alone.

Both say, per id as it was given, the account it resolved to (uid, name, establishment) or why it
was refused; per account, each change and the state it starts from; the approvals the plan needs;
the plan's SHA-256 and when it expires. Nothing here is counted apart from the plan's own lists.
"""

from __future__ import annotations

import json
from typing import Any

from tourniquet.engine.plans import Plan

__all__ = ["plan_lines", "plan_markdown", "who"]

#: At most this many accounts in the approval form (the plan file has them all).
SHOWN = 200


def _state(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def who(account: dict[str, Any]) -> str:
    """``10908301665 → bbernard (Bernard Benoît, Clinique du Parc)`` or ``x → refused: why``."""
    named = str(account.get("named_by"))
    if account.get("refused") and not account.get("account"):
        return f"{named} → refused: {account['refused']}"
    parts = [p for p in (account.get("name"), ", ".join(account.get("establishment") or [])) if p]
    resolved = f"{account['account']}" + (f" ({'; '.join(parts)})" if parts else "")
    if account.get("refused"):
        resolved += f": refused: {account['refused']}"
    return f"{named} → {resolved}" if named != account.get("account") else resolved


def _counts(plan: Plan) -> tuple[int, int, int]:
    accounts = plan.accounts()
    refused = sum(1 for a in accounts if a.get("refused"))
    changes = sum(1 for a in accounts if not a.get("refused") for c in a["changes"] if c["outcome"] == "to apply")
    return len(accounts) - refused, refused, changes


def plan_lines(plan: Plan) -> list[str]:
    """The plan for the terminal: one line per id, one per change."""
    accounts, refused, changes = _counts(plan)
    lines = [f"plan {plan.sha256} ({plan.path})",
             f"  incident {plan.incident}, playbook {plan.data['playbook']}, site {plan.data['site']}: "
             f"{accounts} account(s), {changes} change(s) to apply, {refused} id(s) refused; "
             f"expires {plan.expires:%Y-%m-%d %H:%M} UTC"]
    for account in plan.accounts():
        lines.append(f"  {who(account)}")
        for change in account["changes"]:
            lines.append(f"      {change['outcome']:10} {change['system']} {change['operation']}: "
                         f"{_state(change['before'])} -> {_state(change['after'])}")
    for change in plan.data.get("other_changes", []):
        lines.append(f"  {change['outcome']:10} {change['system']} {change['target']}: {change['operation']}")
    for approval in plan.data.get("approvals", []):
        lines.append(f"  approval needed: {approval['step']}: {approval.get('reason', '')}")
    return lines


def plan_markdown(plan: Plan, *, verb: str = "contain", heading: str = "") -> str:
    """The approval form's description: what approving this plan does, in the verb's own words."""
    accounts, refused, changes = _counts(plan)
    title = heading or f"Approve this plan to {verb}: incident `{plan.incident}`"
    lines = [f"## {title}", "",
             f"Plan `{plan.sha256}` ({plan.data['playbook']}, site {plan.data['site']}): "
             f"**{accounts}** account(s), **{changes}** change(s) to apply, **{refused}** id(s) refused.",
             "",
             f"Approving applies exactly these changes. An account whose state has changed since this plan "
             f"(locked, unlocked or edited by hand) is left untouched and named. Rejecting changes nothing. "
             f"Not answered by {plan.expires:%Y-%m-%d %H:%M} UTC, the plan expires and changes nothing.", ""]
    approvals = plan.data.get("approvals", [])
    if approvals:
        lines += ["**Approvals this plan includes:** " + "; ".join(
            f"{a['step']}: {a.get('reason', '')}" for a in approvals), ""]
    lines += ["| id as given | account (name; establishment) | changes, each from its current state |", "|---|---|---|"]
    for account in plan.accounts()[:SHOWN]:
        named = f"`{account.get('named_by')}`"
        if account.get("refused"):
            lines.append(f"| {named} | {account.get('account') or '—'} | refused: {account['refused']} |")
            continue
        parts = "; ".join(p for p in (account.get("name"), ", ".join(account.get("establishment") or [])) if p)
        done = "<br>".join(f"{c['operation']} ({c['system']}): {c['outcome']}"
                           + (f", from `{_state(c['before'])}`" if c["outcome"] == "to apply" else "")
                           for c in account["changes"]) or "nothing"
        lines.append(f"| {named} | **{account['account']}** ({parts}) | {done} |")
    if len(plan.accounts()) > SHOWN:
        lines.append(f"| … | and {len(plan.accounts()) - SHOWN} more | in {plan.path.name} |")
    other = plan.data.get("other_changes", [])
    if other:
        lines += ["", "Also: " + "; ".join(f"{c['operation']} {c['target']} ({c['system']})" for c in other)]
    return "\n".join(lines) + "\n"

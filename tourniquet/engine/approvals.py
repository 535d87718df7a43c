"""Asking a person: the approver hook, and the rule that no answer in time is a no.

The engine never waits on a person directly: it calls an :data:`Approver` (Prefect's pause-and-form
in a flow run, :func:`reject_all` elsewhere) through :func:`ask_with_timeout`.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

from tourniquet.model import ApprovalDecision, ApprovalRequest, Approver

__all__ = ["Approver", "ApprovalRequest", "ApprovalDecision", "reject_all", "ask_with_timeout",
           "APPROVAL_GRACE_SECONDS"]

#: Extra seconds an approver gets past the request's own timeout before the engine stops waiting.
APPROVAL_GRACE_SECONDS = 30.0


def reject_all(request: ApprovalRequest) -> ApprovalDecision:
    """Outside a Prefect deployment nobody can approve: the answer is no."""
    return ApprovalDecision(False, "", "no approver available outside a Prefect flow run")


def ask_with_timeout(approver: Approver, request: ApprovalRequest, grace: float | None = None) -> ApprovalDecision:
    """Ask the approver; no answer in time, or an approver that fails, counts as a rejection.

    The approver runs in a thread with this context (Prefect's run context included) so the
    engine never waits longer than the request's timeout plus a grace period.
    """
    box: dict[str, Any] = {}

    def ask() -> None:
        try:
            box["decision"] = approver(request)
        except BaseException as exc:  # noqa: BLE001 - any failure of the approver is a "no"
            box["error"] = exc

    thread = threading.Thread(target=contextvars.copy_context().run, args=(ask,), daemon=True,
                              name=f"approval-{request.incident}")
    thread.start()
    thread.join(request.timeout_seconds + (APPROVAL_GRACE_SECONDS if grace is None else grace))
    if thread.is_alive():
        return ApprovalDecision(False, "", f"no answer within {request.timeout_seconds:g}s")
    if "error" in box:
        error = box["error"]
        return ApprovalDecision(False, "", f"approval failed: {type(error).__name__}: {error}")
    decision = box.get("decision")
    if not isinstance(decision, ApprovalDecision):
        return ApprovalDecision(False, "", f"approver gave {type(decision).__name__}, not a decision")
    return decision

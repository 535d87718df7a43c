"""The state a task run ends in, from what its call did: a plan reads as planned, not as done.

A dry run's ``lock[jdupont]`` task completes without locking anything; a green "Completed"
there reads as "locked". :func:`state_for` names the completed state after the call's changes:

| changes of the call                          | state name   |
|----------------------------------------------|--------------|
| at least one applied                         | Completed    |
| none applied, at least one queued (outbox)   | Queued       |
| only planned (dry run)                       | Planned      |
| only no-ops (already in the intended state)  | No change    |
| none (a read: resolve, snapshot, scope …)    | Completed    |

All of them are of type COMPLETED (the run goes on; ``future.result()`` gives the call's result);
only the name and the message differ, which is what the UI shows on the task run.

The chunk task returns it (:func:`tourniquet.flows.executor.chunk_state`): Prefect keeps a state
returned by a task as that task run's final state, with ``data`` as its result.

A playbook's flow run ends the same way (:func:`run_state`), named after its outcome folded from the
journal: *Contained*, *Partially contained* (a Completed run, not a Failed one), *Planned*, *Needs
approval*; its message is the outcome's headline. A run that contained nothing, or stopped, is Failed
(:func:`tourniquet.flows.running.failed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect.states import Completed, State

from tourniquet.actions.context import PlannedChange
from tourniquet.outcomes import Outcomes
from tourniquet.secrets import mask

__all__ = ["state_for", "run_state", "PLANNED", "QUEUED", "NO_CHANGE"]

PLANNED = "Planned"
QUEUED = "Queued"
NO_CHANGE = "No change"


def _count(changes: Sequence[PlannedChange], outcome: str) -> int:
    return sum(1 for change in changes if change.outcome == outcome)


def state_for(changes: Sequence[PlannedChange], result: Any = None) -> State[Any]:
    """The task run's final state for a call that returned ``result`` after making ``changes``."""
    applied, queued = _count(changes, "applied"), _count(changes, "queued")
    planned, noop = _count(changes, "planned"), _count(changes, "noop")
    if applied:
        return Completed(data=result, message=f"{applied} change(s) applied")
    if queued:
        return Completed(data=result, name=QUEUED,
                         message=f"{queued} write(s) waiting in the outbox: the system was unreachable")
    if planned:
        return Completed(data=result, name=PLANNED, message=f"dry run: {planned} change(s) planned, nothing sent")
    if noop:
        return Completed(data=result, name=NO_CHANGE, message="already in the intended state: nothing to do")
    return Completed(data=result)


def run_state(outcomes: Outcomes, result: Any) -> State[Any]:
    """A playbook flow run's final state when something was contained (or planned): named after the outcome."""
    return Completed(data=result, name=outcomes.state_name, message=mask(outcomes.headline()))

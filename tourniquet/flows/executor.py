"""The Prefect executor: each chunk of a step is one Prefect task run, named after what it covers.

A small step shows one task run per account (``lock[jdupont]``); a large one, a bounded number of
chunks (``lock[1-63 of 1000]``), each item still with its own outcome, retries and journal records
(:mod:`tourniquet.engine.chunks`). At most ``step.concurrency`` chunks run at once; the progress
artifact moves after each. A chunk's task run ends *Completed*, *Planned* (a dry run: nothing was
changed), *Queued*, *No change*, or *Failed* naming its first failed item
(:mod:`tourniquet.flows.states`); each change it applied becomes an event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State
from prefect.utilities.annotations import quote

from tourniquet.engine.executor import Chunk, ItemOutcome, Work, run_on_threads
from tourniquet.engine.playbook import Step
from tourniquet.flows.approval import step_timeout
from tourniquet.flows.events import emit_changes
from tourniquet.flows.states import state_for

__all__ = ["PrefectExecutor", "run_chunk_task", "chunk_state"]


def chunk_state(outcomes: list[ItemOutcome]) -> State:
    """The task run's final state: Failed naming its first failed item, else named after its changes.

    :func:`~tourniquet.flows.states.state_for` names it: Completed when something was applied, Planned
    (a dry run: nothing was sent), Queued (the outbox), No change; ``data`` is the chunk's outcomes.
    """
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        first = failed[0]
        return Failed(message=f"{len(failed)} of {len(outcomes)} failed; first {first.invocation.label}: "
                              f"{first.error}", data=outcomes)
    return state_for([change for outcome in outcomes for change in outcome.changes], outcomes)


@task(name="chunk", task_run_name="{label}", cache_policy=NO_CACHE, persist_result=False)
def run_chunk_task(label: str, chunk: Chunk, work: Work) -> State:
    """One chunk, inside a task run; each applied change is announced as an event."""
    with step_timeout(chunk.step.timeout):
        outcomes = work(chunk)
    first = chunk.invocations[0].context
    emit_changes([change for outcome in outcomes for change in outcome.changes], first.incident, first.playbook)
    chunk.outcomes = outcomes  # handed back beside Prefect, which keeps every task's result until the flow ends
    state = chunk_state(outcomes)
    state.data = None
    return state


class PrefectExecutor:
    """Chunks as Prefect task runs, at most ``step.concurrency`` at a time (threads of this flow run)."""

    def __init__(self) -> None:
        #: called with (step, chunks done, chunks in the step) after each chunk: the progress artifact
        self.on_chunk: Callable[[Step, int, int], None] | None = None

    def run(self, step: Step, chunks: Sequence[Chunk], work: Work, deadline: float) -> list[ItemOutcome]:
        def as_task(chunk: Chunk) -> list[ItemOutcome]:
            state: Any = run_chunk_task(chunk.label, quote(chunk), quote(work), return_state=True)
            if chunk.outcomes is not None:
                outcomes, chunk.outcomes = chunk.outcomes, None
                return outcomes
            failure = state.result(raise_on_failure=False)  # the task itself failed (a bug, an interruption)
            error = failure if isinstance(failure, BaseException) else RuntimeError(str(state.message))
            return [ItemOutcome(i, error=error) for i in chunk.invocations]

        return run_on_threads(step, chunks, as_task, deadline, on_chunk=self.on_chunk)

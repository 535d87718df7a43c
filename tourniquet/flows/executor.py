"""The Prefect executor: a playbook step's calls as Prefect task runs, with each account's lock held.

While a batch of changing calls runs, this run holds the accounts' locks
(:mod:`tourniquet.flows.locks`): no other run changes those accounts meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.utilities.annotations import quote

from tourniquet.engine.playbook import Step
from tourniquet.engine.run import Invocation, ItemOutcome, StepTimeout, _label_of
from tourniquet.errors import TransientError
from tourniquet.flows.approval import step_timeout
from tourniquet.flows.events import emit_change
from tourniquet.flows.locks import account_locks

__all__ = ["PrefectExecutor", "run_action"]


def _transient_only(task: Any, task_run: TaskRun, state: State) -> bool:
    """Retry only what may work next time: an unreachable or busy system, not a refusal."""
    try:
        state.result()
    except TransientError:
        return True
    except BaseException:
        return False
    return False


def _changed_account(invocation: Invocation) -> str | None:
    """The account a changing call targets (None for reads, plans and calls without a target)."""
    spec = invocation.spec
    if not spec.changes or spec.target is None or invocation.context.dry_run:
        return None
    return _label_of(invocation.arguments.get(spec.target)) or None


@task(name="action", task_run_name="{label}", cache_policy=NO_CACHE, persist_result=False)
def run_action(label: str, invocation: Invocation) -> Any:
    """One call; each change it applies becomes an event."""
    seen = len(invocation.context.changes)  # a retry must not announce earlier attempts' changes again
    try:
        with step_timeout(invocation.step.timeout):
            return invocation()
    finally:
        context = invocation.context
        for change in context.changes[seen:]:
            emit_change(change, context.incident, context.playbook)


class PrefectExecutor:
    """One Prefect task run per action call; for_each items at most ``concurrency`` at a time.

    While a batch of changing calls runs, this run holds the accounts' locks
    (:mod:`tourniquet.flows.locks`): no other run changes those accounts meanwhile.
    """

    def __init__(self) -> None:
        #: called with (step, calls done, calls in the step) after each batch: the progress artifact
        self.on_batch: Callable[[Step, int, int], None] | None = None

    def run(self, step: Step, invocations: Sequence[Invocation]) -> list[ItemOutcome]:
        configured = run_action.with_options(
            retries=step.retries,
            retry_delay_seconds=step.retry_delay,
            retry_condition_fn=_transient_only,
        )
        # Prefect cannot interrupt a blocking call in a thread; each connector has its own network
        # timeout, and the step timeout below stops the run from waiting on a call that never returns.
        deadline = time.monotonic() + step.timeout
        outcomes: list[ItemOutcome] = []
        for start in range(0, len(invocations), step.concurrency):
            batch = invocations[start:start + step.concurrency]
            accounts = [a for a in (_changed_account(i) for i in batch) if a]
            try:
                with account_locks(accounts, timeout_seconds=max(1.0, deadline - time.monotonic())):
                    outcomes.extend(self._run_batch(step, batch, configured, deadline))
            except TransientError as exc:  # the accounts stayed busy: these calls never started
                outcomes.extend(ItemOutcome(i, error=exc) for i in batch[len(outcomes) - start:])
            if self.on_batch is not None:
                self.on_batch(step, len(outcomes), len(invocations))
        return outcomes

    @staticmethod
    def _run_batch(step: Step, batch: Sequence[Invocation], configured: Any, deadline: float) -> list[ItemOutcome]:
        futures = [configured.submit(i.label, quote(i)) for i in batch]
        outcomes: list[ItemOutcome] = []
        for invocation, future in zip(batch, futures):
            try:
                remaining = max(0.0, deadline - time.monotonic())
                outcomes.append(ItemOutcome(invocation, result=future.result(timeout=remaining)))
            except TimeoutError:
                outcomes.append(ItemOutcome(invocation, error=StepTimeout(
                    f"step {step.id} did not finish within {step.timeout:g}s")))
            except Exception as exc:  # the engine decides what a failure means
                outcomes.append(ItemOutcome(invocation, error=exc))
        return outcomes

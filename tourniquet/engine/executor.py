"""Where a step's chunks run: the executor interface, and plain threads (no Prefect).

The engine decides *what* a chunk does (:func:`tourniquet.engine.chunks.run_chunk`); an executor
decides *where*: here on a thread pool (``tourniquet plan``, resumes, engine tests), in
:mod:`tourniquet.flows.executor` as Prefect task runs. Both run at most ``step.concurrency``
chunks at once and stop waiting at the step's deadline: a chunk still running then is reported
as timed out and left behind (a thread cannot be killed; every connector has its own network
timeout, and a late change still journals itself).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from tourniquet.actions.context import ActionContext, PlannedChange
from tourniquet.engine.playbook import Step
from tourniquet.errors import TourniquetError
from tourniquet.registry import ActionSpec

__all__ = ["Invocation", "ItemOutcome", "Chunk", "Work", "Executor", "ThreadExecutor", "StepTimeout", "timed_out"]

log = structlog.get_logger("tourniquet")


class StepTimeout(TourniquetError):
    """A step ran past its timeout; what it had done so far is in the journal."""


@dataclass
class Invocation:
    """One call of an action for one item of a step."""

    label: str
    step: Step
    spec: ActionSpec
    arguments: dict[str, Any]
    context: ActionContext
    item: Any = None
    _values: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def call(self, context: ActionContext | None = None) -> Any:
        """Run the action with its (validated) arguments, in ``context`` (default: the invocation's own).

        The arguments are validated once, whichever pass calls first (a chunk plans, then applies).
        """
        values = self._values
        if values is None:
            validated = self.spec.validate_arguments(self.arguments)
            values = self._values = {name: getattr(validated, name) for name in type(validated).model_fields}
        with structlog.contextvars.bound_contextvars(step=self.step.id, item=self.label):
            return self.spec.function(context or self.context, **values)


@dataclass
class ItemOutcome:
    invocation: Invocation
    result: Any = None
    error: BaseException | None = None
    changes: list[PlannedChange] = field(default_factory=list)
    #: Items the action reported and went on without (an unknown id among several).
    problems: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Chunk:
    """Items of one step run together: one task run, one read-ahead, one commit of intents and one of outcomes."""

    label: str
    step: Step
    invocations: list[Invocation]
    #: Set by an executor that runs the chunk elsewhere (a Prefect task) and hands the outcomes back.
    outcomes: list["ItemOutcome"] | None = None


Work = Callable[[Chunk], list[ItemOutcome]]


def timed_out(chunk: Chunk, why: str) -> list[ItemOutcome]:
    return [ItemOutcome(i, error=StepTimeout(f"step {chunk.step.id} did not finish within {chunk.step.timeout:g}s "
                                             f"({i.label} {why})")) for i in chunk.invocations]


class Executor(Protocol):
    #: called with (step, chunks done, chunks in the step) after each chunk: progress
    on_chunk: Callable[[Step, int, int], None] | None

    def run(self, step: Step, chunks: Sequence[Chunk], work: Work, deadline: float) -> list[ItemOutcome]: ...


class ThreadExecutor:
    """Chunks on plain threads, at most ``step.concurrency`` at once."""

    def __init__(self) -> None:
        self.on_chunk: Callable[[Step, int, int], None] | None = None

    def run(self, step: Step, chunks: Sequence[Chunk], work: Work, deadline: float) -> list[ItemOutcome]:
        return run_on_threads(step, chunks, work, deadline, on_chunk=self.on_chunk)


def run_on_threads(step: Step, chunks: Sequence[Chunk], work: Callable[[Chunk], list[ItemOutcome]], deadline: float,
                   *, on_chunk: Callable[[Step, int, int], None] | None = None) -> list[ItemOutcome]:
    """Run ``work`` for each chunk on a pool of ``step.concurrency`` threads (this context copied to each)."""
    if not chunks:
        return []
    pool = ThreadPoolExecutor(max_workers=min(step.concurrency, len(chunks)), thread_name_prefix=f"step-{step.id}")
    done_count = 0

    def counted(future: Future[list[ItemOutcome]]) -> None:
        nonlocal done_count
        done_count += 1
        if on_chunk is not None:
            try:
                on_chunk(step, done_count, len(chunks))
            except Exception as exc:  # progress is a courtesy: never fail the containment over it
                log.warning("progress.not_updated", error=str(exc))

    futures = []
    for chunk in chunks:
        future = pool.submit(contextvars.copy_context().run, work, chunk)
        future.add_done_callback(counted)
        futures.append(future)
    wait_futures(futures, timeout=max(0.0, deadline - time.monotonic()))
    pool.shutdown(wait=False, cancel_futures=True)
    outcomes: list[ItemOutcome] = []
    for chunk, future in zip(chunks, futures):
        if future.done() and not future.cancelled():
            outcomes.extend(future.result())
        else:
            outcomes.extend(timed_out(chunk, "never started" if future.cancelled() else "still running"))
    return outcomes

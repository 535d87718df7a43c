"""A step's items in chunks: a bounded number of units of work, each item keeping its own outcome.

Why chunks: one Prefect task run, one journal fsync and one LDAP operation *per account per step*
made 1,000 accounts take ~200× a bare ldap3 loop. A chunk runs up to :data:`MAX_CHUNK` items as one
unit (one task run in a flow run), and inside it:

1. **one read-ahead** — the directory reads the chunk's entries in one search
   (:meth:`~tourniquet.connectors.directory.client.DirectoryClient.read_ahead`);
2. for a changing action, **a planning pass** — each item's action runs as in a dry run and its
   intended changes are noted; they are written to the journal together and fsync'ed once, so no
   change is sent before its intent is on disk;
3. **the applying pass** — each item's action runs again on the same reads and sends its changes
   (each read back: with the post-read control, in the modify's own answer);
4. **one commit of the outcomes** (evidence files first, then the journal records that name them).

Items that fail on a transient error (down, timeout, busy) are retried one by one, up to the step's
``retries``, ``retry_delay`` apart, until the step's deadline. Small steps stay readable: up to
:data:`TARGET_CHUNKS` items, every item is its own chunk (``lock[jdupont]`` in the Prefect UI).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

import structlog

from tourniquet.actions.context import ActionContext
from tourniquet.engine.executor import Chunk, Invocation, ItemOutcome, StepTimeout
from tourniquet.engine.playbook import Step
from tourniquet.errors import TransientError
from tourniquet.journal import Journal
from tourniquet.model import Account
from tourniquet.site import Site
from tourniquet.storage import sync_paths

__all__ = ["split", "run_chunk", "chunk_size", "MAX_CHUNK", "TARGET_CHUNKS"]

log = structlog.get_logger("tourniquet")

#: At most this many items in one chunk (one task run, one read-ahead, two fsyncs).
MAX_CHUNK = 250
#: Steps of up to this many items run one item per chunk: a small incident reads item by item in the UI.
TARGET_CHUNKS = 16


def chunk_size(count: int, concurrency: int = 4) -> int:
    """One item per chunk for a small step; else as few chunks as run at once (each costs a task run and
    the Prefect server's bookkeeping), at most :data:`MAX_CHUNK` items each."""
    if count <= TARGET_CHUNKS:
        return 1
    return max(1, min(MAX_CHUNK, math.ceil(count / max(1, concurrency))))


def split(step: Step, invocations: Sequence[Invocation]) -> list[Chunk]:
    """The step's invocations in chunks of :func:`chunk_size`, labelled for the UI."""
    size = chunk_size(len(invocations), step.concurrency)
    chunks = []
    for start in range(0, len(invocations), size):
        part = list(invocations[start:start + size])
        label = part[0].label if len(part) == 1 else f"{step.id}[{start + 1}-{start + len(part)} of {len(invocations)}]"
        if len(part) > 1:
            for invocation in part:
                invocation.context.verbose = False
        chunks.append(Chunk(label, step, part))
    return chunks


def _dn_of(invocation: Invocation) -> str | None:
    """The DN of the account this call is about (its target, or an ``account`` argument), if any."""
    spec = invocation.spec
    value = invocation.arguments.get(spec.target or "account")
    if isinstance(value, Account):
        return value.dn
    if isinstance(value, dict) and isinstance(value.get("dn"), str):
        return value["dn"]
    return None


class _Unrecorded:
    """The journal as a planning pass sees it: read as usual, but what the action writes is not kept.

    An action may journal evidence on its own (the sessions it found, a brokered identity) before
    it changes anything; in the planning pass that would be written twice.
    """

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def write(self, record_type: str, /, **fields: Any) -> dict[str, Any]:
        return {"type": record_type, **fields}

    def commit(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)


def _fresh(invocation: Invocation, unsynced: list[Any], **changes: Any) -> ActionContext:
    """A context of its own for one pass over one item (its changes, intents and prepared intents)."""
    fields: dict[str, Any] = {"changes": [], "intents": [], "prepared": [], "problems": [], "planning": False,
                              "unsynced": unsynced,
                              "verbose": invocation.context.verbose}
    return dataclasses.replace(invocation.context, **{**fields, **changes})


def _attempt(invocation: Invocation, context: ActionContext) -> ItemOutcome:
    try:
        return ItemOutcome(invocation, result=invocation.call(context), changes=context.changes,
                           problems=context.problems)
    except Exception as exc:  # the engine decides what a failure means
        return ItemOutcome(invocation, error=exc, changes=context.changes, problems=context.problems)


def run_chunk(chunk: Chunk, *, site: Site, journal: Journal, deadline: float) -> list[ItemOutcome]:
    """Run one chunk (see the module docstring); never raises: every item gets an outcome."""
    invocations = chunk.invocations
    spec = invocations[0].spec
    dry_run = invocations[0].context.dry_run
    dns = [dn for dn in (_dn_of(i) for i in invocations) if dn]
    unsynced: list[Any] = []
    try:
        with ExitStack() as stack:
            if dns:
                stack.enter_context(site.directory.read_ahead(dns))
            stack.enter_context(journal.group())
            if spec.changes and spec.target is not None and not dry_run:
                outcomes = _plan_then_apply(invocations, journal, unsynced, deadline)
            else:
                outcomes = [_attempt(i, _fresh(i, unsynced)) if time.monotonic() < deadline
                            else _late(i) for i in invocations]
            outcomes = [_retried(o, unsynced, journal, deadline) for o in outcomes]
            sync_paths(unsynced)  # evidence files on disk before the records that name them
    except OSError as exc:  # the journal or the evidence could not be written (a full or read-only disk)
        log.error("chunk.not_recorded", chunk=chunk.label, error=str(exc))
        return [ItemOutcome(i, error=exc) for i in invocations]
    _log_summary(chunk, outcomes)
    return outcomes


def _log_summary(chunk: Chunk, outcomes: list[ItemOutcome]) -> None:
    """One line per chunk: what its items did (each item's own line is at debug level; the journal has all)."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        kinds = {c.outcome for c in outcome.changes} or {"done"}
        kind = "failed" if outcome.error is not None else "applied" if "applied" in kinds else sorted(kinds)[0]
        counts[kind] = counts.get(kind, 0) + 1
    failed = [o for o in outcomes if o.error is not None]
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    if failed:
        log.warning("chunk.finished", chunk=chunk.label, outcome=summary,
                    first_failure=f"{failed[0].invocation.label}: {failed[0].error}")
    else:
        log.info("chunk.finished", chunk=chunk.label, outcome=summary)


def _late(invocation: Invocation) -> ItemOutcome:
    step = invocation.step
    return ItemOutcome(invocation, error=StepTimeout(
        f"step {step.id} did not finish within {step.timeout:g}s ({invocation.label} never started)"))


def _plan_then_apply(invocations: list[Invocation], journal: Journal, unsynced: list[Any],
                     deadline: float) -> list[ItemOutcome]:
    planned: list[tuple[Invocation, ActionContext, ItemOutcome | None]] = []
    for invocation in invocations:
        context = _fresh(invocation, unsynced, planning=True, dry_run=True,
                         journal=_Unrecorded(invocation.context.journal))
        outcome = _attempt(invocation, context)
        planned.append((invocation, context, outcome if outcome.error is not None else None))
    prepared: dict[int, list[dict[str, Any]]] = {}
    for index, (_, context, failed) in enumerate(planned):
        if failed is None:
            prepared[index] = [journal.write("intent", **intent) for intent in context.intents]
    sync_paths(unsynced)
    unsynced.clear()
    journal.commit()  # every intent of the chunk on disk, with one fsync, before any change is sent
    outcomes = []
    for index, (invocation, _, failed) in enumerate(planned):
        if failed is not None:
            outcomes.append(failed)
        elif time.monotonic() >= deadline:
            outcomes.append(_late(invocation))
        else:
            outcomes.append(_attempt(invocation, _fresh(invocation, unsynced, prepared=prepared[index])))
    return outcomes


def _retried(outcome: ItemOutcome, unsynced: list[Any], journal: Journal, deadline: float) -> ItemOutcome:
    """Retry an item that failed on a transient error, alone, with fresh reads and intents of its own."""
    invocation = outcome.invocation
    step = invocation.step
    attempt = 0
    while isinstance(outcome.error, TransientError) and attempt < step.retries:
        if time.monotonic() + step.retry_delay >= deadline:
            break
        attempt += 1
        log.warning("step.retry", item=invocation.label, attempt=attempt, error=str(outcome.error))
        time.sleep(step.retry_delay)
        journal.commit()  # what the failed attempt recorded is on disk before the next one starts
        outcome = _attempt(invocation, _fresh(invocation, unsynced))
    return outcome

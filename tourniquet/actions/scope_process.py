"""The data scope's reading of the log, in this process or — at incident size — in a process of its own.

An incident across regions runs each region's part on a thread of one flow-run process: the three
scopes' Python work (the daily walk, millions of groups, the frozen events) would share one core.
From :data:`OWN_PROCESS_FROM` accounts on an SQL log, :func:`read_scope` runs it in a fresh
(``spawn``) process instead, which opens its own connection with the site's audit settings, writes the
frozen events and the people files itself and hands back the figures: the regions' scopes use every
core, and their memory is not the flow run's. Smaller scopes stay here (a process costs a second).
Its log lines (the queries) print as the parent's would; they do not reach the Prefect run's logs.
"""

from __future__ import annotations

import csv
import gzip
import json
import multiprocessing
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import structlog

from tourniquet.connectors.audit import SQL_KINDS, AuditConfig
from tourniquet.drafts import PeopleColumns
from tourniquet.drafts.people import safe_cell
from tourniquet.errors import PermanentError
from tourniquet.scope import AffectedSubject, Scope

__all__ = ["ScopeFiles", "ScopeReading", "read_scope", "private_file", "OWN_PROCESS_FROM", "SUBJECT_COLUMNS"]

log = structlog.get_logger("tourniquet")

#: From this many accounts on an SQL log, the scope is read in a process of its own.
OWN_PROCESS_FROM = 200

SUBJECT_COLUMNS = ["subject", "categories", "fields", "accounts", "records", "first", "last", "anomalous_only",
                   "found", "national_hash"]


@dataclass
class ScopeFiles:
    """Where a live scope writes what it froze (``None`` for a dry run: nothing is written)."""

    events: Path
    subjects: Path
    people_to_warn: Path
    columns: PeopleColumns


@dataclass
class ScopeReading:
    """What the reading gives back: the figures, the events frozen, the queries it ran (for the evidence)."""

    scope: Scope
    events: int
    queries: list[dict[str, Any]]


def read_scope(client: Any, config: AuditConfig, keys: dict[str, str], since: Any, until: datetime,
               files: ScopeFiles | None) -> ScopeReading:
    """Plan, freeze the events and read the scope of ``keys`` (log key → label): here, or in its own process."""
    if len(keys) < OWN_PROCESS_FROM or config.kind not in SQL_KINDS:
        return _read(client, keys, since, until, files)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(child, config, keys, since, until, files), daemon=True,
                              name="tourniquet-scope")
    process.start()
    child.close()
    try:
        kind, value = pickle.loads(parent.recv_bytes())
    except EOFError:
        process.join(10)
        raise PermanentError(f"the scope's process ended ({process.exitcode}) without an answer",
                             system="audit") from None
    finally:
        parent.close()
    process.join(30)
    if kind == "error":
        raise value
    return value  # type: ignore[no-any-return]


def _child(pipe: Any, config: AuditConfig, keys: dict[str, str], since: Any, until: datetime,
           files: ScopeFiles | None) -> None:
    from tourniquet.connectors.audit import connect
    from tourniquet.logs import configure_logging

    configure_logging()  # the parent's level and format (inherited settings): quiet under a terminal's bar
    try:
        client = connect(config, state_dir=None)
        try:
            answer: tuple[str, Any] = ("done", _read(client, keys, since, until, files))
        finally:
            client.close()
    except Exception as exc:  # handed to the parent, which raises it in the step
        answer = ("error", exc)
    try:
        data = pickle.dumps(answer)
        pickle.loads(data)
    except Exception:
        data = pickle.dumps(("error", PermanentError(str(answer[1]), system="audit")))
    pipe.send_bytes(data)
    pipe.close()


def _read(client: Any, keys: dict[str, str], since: Any, until: datetime, files: ScopeFiles | None) -> ScopeReading:
    plan = client.plan(list(keys), since, until)
    for warning in plan.warnings:
        log.warning("scope.window", warning=warning.message)
    if files is None:
        scope = client.scope(plan, on_subject=lambda subject: None)
        return ScopeReading(scope, 0, list(getattr(client.source, "queries", [])))
    events = _freeze_events(client, plan, files.events)
    with private_file(files.subjects) as subjects_file, private_file(files.people_to_warn) as warn_file:
        subjects = csv.DictWriter(subjects_file, fieldnames=SUBJECT_COLUMNS)
        warn = csv.DictWriter(warn_file, fieldnames=files.columns.names)
        subjects.writeheader()
        warn.writeheader()

        def write_subject(subject: AffectedSubject) -> None:
            subjects.writerow({"subject": safe_cell(subject.subject), "categories": ";".join(subject.categories),
                               "fields": ";".join(subject.fields),
                               "accounts": ";".join(keys.get(a, a) for a in subject.accounts),
                               "records": subject.records, "first": subject.first.isoformat(),
                               "last": subject.last.isoformat(), "anomalous_only": int(subject.anomalous_only),
                               "found": "" if subject.found is None else int(subject.found),
                               "national_hash": subject.national_hash or ""})
            warn.writerow(files.columns.row(subject))

        scope = client.scope(plan, on_subject=write_subject)
    return ScopeReading(scope, events, list(getattr(client.source, "queries", [])))


@contextmanager
def private_file(path: Path) -> Iterator[IO[str]]:
    """A text file only its owner can read (it names people), created so before anything is written."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "w", encoding="utf-8", newline="") as handle:
        yield handle


def _freeze_events(client: Any, plan: Any, path: Path) -> int:
    """Stream the matching events to a gzipped JSON-lines file (mtime 0: same events, same bytes)."""
    count = 0
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
        for event in client.events(plan):
            packed.write((json.dumps(event.as_json(), sort_keys=True) + "\n").encode("utf-8"))
            count += 1
    return count

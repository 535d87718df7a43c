"""A progress bar in the terminal while a run goes; nothing at all when stderr is not a terminal.

A Prefect run tells it through :func:`tourniquet.flows.artifacts.progress_listener` (the same
moves as the run's progress artifact); a plan without Prefect through its ``on_step`` hook
(:class:`TerminalObserver`). While the bar shows, Prefect's console prints warnings and errors
only: its one line per task run would scroll the bar away, and the bar says the same.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TextIO

__all__ = ["TerminalProgress", "TerminalObserver", "quiet_prefect_console"]


class TerminalProgress:
    """``title: step ━━━━━━━╸━━━ 60% 0:00:04`` on stderr, from enter to exit (only on a terminal)."""

    def __init__(self, title: str, stream: TextIO | None = None, first: str = "") -> None:
        self.title = title
        self.first = first
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> TerminalProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                console=Console(file=self.stream), redirect_stdout=True, redirect_stderr=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(f"{self.title}: {self.first}" if self.first else self.title, total=100)
        return self

    def update(self, percent: float, what: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=percent,
                                  description=f"{self.title}: {what}" if what else self.title)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class TerminalObserver:
    """The engine's :class:`~tourniquet.engine.execute.RunObserver` for a plan run without Prefect."""

    def __init__(self, progress: TerminalProgress) -> None:
        self.progress = progress

    def started(self, run: Any, *, resumed: bool) -> None:
        total = max(1, len(run.playbook.steps))
        done = [0]

        def on_step(step: str, status: str) -> None:
            if status != "started":
                done[0] += 1
            self.progress.update(100.0 * done[0] / total, step)

        run.on_step = on_step

    def finished(self, summary: Any, markdown: str, links: dict[str, str], *, root: str = "") -> None:
        self.progress.update(100.0, summary.outcome().headline())  # the words the last lines will say


@contextmanager
def quiet_prefect_console(enabled: bool = True) -> Iterator[None]:
    """Prefect's console handlers at WARNING for the block (their INFO lines would scroll a bar away)."""
    if not enabled:
        yield
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    handlers = [h for name in ("", "prefect", "uvicorn", "fastapi")
                for h in logging.getLogger(name).handlers if isinstance(h, PrefectConsoleHandler)]
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(max(handler.level, logging.WARNING))
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels):
            handler.setLevel(level)
